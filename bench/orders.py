"""`redcart bench orders`: accepted orders per second through the real HTTP server on PostgreSQL.

What runs:
1. A throwaway database `redcart_bench_<random>` on the PostgreSQL server named by
   REDCART_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test); `redcart migrate`,
   then seed data through the use cases: one JPY merchant, a bonded and a direct-mail warehouse,
   50 cheap products with a million units each, the JPY rate, one buyer per client.
2. The API as its own process (uvicorn, uvloop, httptools, one worker), exactly
   `redcart.asgi:app`'s create_app() behind a pass-through ASGI wrapper that adds one path,
   /__bench/writer (writer stats and thread ids), so the figures can show batch sizes.
3. A closed loop of `clients` keep-alive connections (bench.httpload, uvloop), each POSTing
   /orders with its own buyer token and a fresh Idempotency-Key: 1 unit of one product, a valid
   resident ID that changes every 500 orders so the 26,000 CNY annual CBEC limit never bites.
4. The baseline on a second throwaway database: the same use case, in-process, 16 threads, one
   eventsourcing `app.save` per command with no group commit (bench.naive).

Both databases and the server are removed at the end, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from bench.machine import python_loop_ms

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
PRODUCTS = 50
ORDERS_PER_IDENTITY = 500  # at most ~38 CNY dutiable per order: 500 orders stay under 26,000
WARMUP_S = 2.0
NAIVE_THREADS = 16
NAIVE_WARMUP_S = 1.0
REPO = Path(__file__).resolve().parent.parent
ADDRESS = {
    "recipient": "王小红",
    "mobile": "13800138000",
    "province": "上海市",
    "city": "上海市",
    "district": "黄浦区",
    "street": "南京东路 100 号",
    "postcode": "200001",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# For trying server-side changes without editing them in: another uvicorn --factory target (it may
# wrap bench.orders:instrumented_app) and a worker count. Both show up in the figures.
SERVER_APP = os.environ.get("REDCART_BENCH_SERVER_APP") or "bench.orders:instrumented_app"
WORKERS = int(os.environ.get("REDCART_BENCH_WORKERS") or "1")
# The production topology on PostgreSQL: read models kept by `redcart worker projections`.
PROJECTIONS = os.environ.get("REDCART_BENCH_PROJECTIONS") or "worker"


# -- entry point -------------------------------------------------------------------------------


def run(seconds: float = 10.0, clients: int = 64, progress: bool = True) -> dict:
    """Measure; returns the figures (see the module docstring). Progress goes to stderr."""
    from rich.console import Console

    if seconds <= 0 or clients < 1:
        raise ValueError("seconds must be > 0 and clients >= 1")
    console = Console(stderr=True, quiet=not progress, highlight=False, soft_wrap=True)
    with _terminate_on_sigterm(), contextlib.ExitStack() as cleanup:
        server_url = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redcart-bench-")))
        admin_key, secret_key = secrets.token_urlsafe(24), secrets.token_urlsafe(32)

        # -- group commit through HTTP --------------------------------------------------------
        t = time.perf_counter()
        db_url = cleanup.enter_context(_throwaway_database(server_url))
        env = _env(db_url, tmp / "http", admin_key, secret_key)
        seed = _prepare(env, clients)
        console.print(
            f"[dim]bench orders: database {urlsplit(db_url).path[1:]} seeded in "
            f"{time.perf_counter() - t:.1f}s ({PRODUCTS} products, {clients} buyers)[/]"
        )
        server = cleanup.enter_context(_server(env, tmp / "server.log"))
        console.print(
            f"[dim]server pid {server.pid} on port {server.port}; {clients} clients, "
            f"{WARMUP_S:.0f}s warm-up + {seconds:g}s[/]"
        )
        machine = _machine(db_url)
        http = _load(server, seed, clients, seconds, console)
        server_log = server.stop()

        # -- baseline: one save per command, in-process --------------------------------------
        naive_seconds = seconds
        db2_url = cleanup.enter_context(_throwaway_database(server_url))
        env2 = _env(db2_url, tmp / "naive", admin_key, secret_key)
        seed2 = _prepare(env2, NAIVE_THREADS)
        console.print(
            f"[dim]baseline: {NAIVE_THREADS} threads, one app.save per command, "
            f"{NAIVE_WARMUP_S:.0f}s warm-up + {naive_seconds:g}s[/]"
        )
        naive = _naive(env2, seed2, naive_seconds, console)

    figures = _figures(http, naive, clients, seconds, machine, server_log)
    if progress:
        console.print(
            f"[bold]{figures['orders_per_s']:.0f} orders/s[/] accepted "
            f"(p50 {_ms(figures['p50_ms'])}, p99 {_ms(figures['p99_ms'])}) vs "
            f"{figures['naive_orders_per_s']:.0f}/s one-save-per-command "
            f"(p99 {_ms(figures['naive_p99_ms'])}): [bold]×{figures['speedup'] or 0:.1f}[/]"
        )
    return figures


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


# -- databases and settings --------------------------------------------------------------------


@contextlib.contextmanager
def _throwaway_database(server_url: str) -> Iterator[str]:
    """A fresh database on the server of `server_url`; dropped (FORCE) on the way out."""
    import psycopg
    from psycopg import sql

    name = f"redcart_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def throwaway_event_store(cleanup: contextlib.ExitStack, app: type) -> dict[str, str]:
    """The eventsourcing environment of Application class `app`'s events table in a throwaway
    database, the table made (and `CREATE_TABLE` off again, as a runtime process runs)."""
    from commerce.platform.eventstore import event_store_env

    server_url = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redcart-bench-")))
    db_url = cleanup.enter_context(_throwaway_database(server_url))
    env = event_store_env(db_url, tmp, app.name, create_table=True)
    app(env=env).close()
    return env | {"CREATE_TABLE": "n"}


def _env(db_url: str, var_dir: Path, admin_key: str, secret_key: str) -> dict[str, str]:
    return {
        "REDCART_DATABASE_URL": db_url,
        "REDCART_VAR_DIR": str(var_dir),
        "REDCART_ADMIN_KEY": admin_key,
        "REDCART_SECRET_KEY": secret_key,
    }


@dataclass(frozen=True)
class Seed:
    merchant_id: UUID
    skus: tuple[str, ...]
    buyers: tuple[tuple[UUID, str], ...]  # (id, bearer token)


def _prepare(env: dict[str, str], buyers: int) -> Seed:
    """`redcart migrate`, then the catalogue and buyers through the use cases."""
    from redcart.settings import Settings
    from redcart.wiring import migrate

    settings = Settings.from_env(env)
    migrate(settings)
    return _seed(settings, buyers)


def _seed(settings: Any, buyers: int) -> Seed:
    from commerce import credentials
    from commerce.domain import ids
    from commerce.platform.groupcommit import GroupCommitWriter
    from commerce.services import catalog
    from commerce.services.access import Principal
    from commerce.services.idempotency import Idempotency
    from redcart.wiring import commerce_app

    cfg = settings.commerce_config()
    app = commerce_app(settings, create_table=False)
    writer = GroupCommitWriter(app).start()
    admin = Principal("admin")

    def key(who: Any, name: str) -> Idempotency:
        return Idempotency(who.name, f"bench:{name}", f"bench:{name}")

    try:
        with ThreadPoolExecutor(32) as pool:  # concurrent commands share group commits

            def each(fn: Callable, items: Any) -> list:
                return list(pool.map(fn, items))

            writer.execute(catalog.set_fx_rate, cfg, "JPY", Decimal("0.0478"), "bench")
            merchant = writer.execute(
                catalog.onboard_merchant, cfg, key(admin, "merchant"), "Bench KK", "JP", "JPY"
            ).body
            mid = UUID(merchant["id"])
            seller = Principal("merchant", mid)
            bonded = writer.execute(
                catalog.open_warehouse,
                cfg,
                key(seller, "bonded"),
                mid,
                "Ningbo Bonded Zone",
                "bonded",
                "CN",
                "Meishan Bonded Port, Ningbo",
            ).body
            overseas = writer.execute(
                catalog.open_warehouse,
                cfg,
                key(seller, "overseas"),
                mid,
                "Tokyo DC",
                "direct_mail",
                "JP",
                "1-2-3 Koto, Tokyo",
            ).body
            skus = tuple(f"BENCH-{i:03d}" for i in range(PRODUCTS))

            def list_product(i: int) -> None:
                fields = {
                    "sku": skus[i],
                    "title": f"Bench item {i}",
                    "brand": "Bench",
                    "origin_country": "JP",
                    "hs_code": "3304990099",
                    "category": "beauty",
                    "list_price_minor": 100 + 10 * i,  # 100..590 JPY: 4.78..28.20 CNY
                    "weight_grams": 50,
                    "vat_rate": Decimal("0.13"),
                    "consumption_tax_rate": Decimal("0"),
                }
                writer.execute(catalog.list_product, cfg, key(seller, skus[i]), mid, fields)

            each(list_product, range(PRODUCTS))
            stock = [
                (ids.product_id(mid, sku), UUID(w["id"]))
                for sku in skus
                for w in (bonded, overseas)
            ]
            each(
                lambda pw: writer.execute(catalog.receive_stock, cfg, mid, pw[0], pw[1], 1_000_000),
                stock,
            )

            def sign_up(i: int) -> tuple[UUID, str]:
                body = writer.execute(
                    catalog.sign_up_buyer, cfg, key(admin, f"buyer:{i}"), f"bench buyer {i}"
                ).body
                bid = UUID(body["id"])
                return bid, credentials.issue(credentials.BUYER_PREFIX, bid, cfg.secret_key)

            people = tuple(each(sign_up, range(buyers)))
    finally:
        writer.stop()
        app.close()
    return Seed(mid, skus, people)


# -- the workload ------------------------------------------------------------------------------


def resident_id(client: int, rotation: int) -> str:
    """A valid, distinct resident ID per (client, rotation): region from the client, birth date
    from the rotation, check digit computed."""
    from commerce.domain.identity import resident_id_check_char

    region = 110000 + client % 890000
    born = date(1950, 1, 1) + timedelta(days=rotation % 20000)
    body = f"{region:06d}{born:%Y%m%d}{(client // 890000) % 1000:03d}"
    return body + resident_id_check_char(body)


def order_body(seed: Seed, client: int, n: int) -> dict:
    return {
        "merchant_id": str(seed.merchant_id),
        "lines": [{"sku": seed.skus[(client * 7 + n) % len(seed.skus)], "quantity": 1}],
        "identity": {
            "name": "王小明",
            "resident_id": resident_id(client, n // ORDERS_PER_IDENTITY),
        },
        "address": ADDRESS,
    }


# -- the server --------------------------------------------------------------------------------


def instrumented_app() -> Any:
    """`redcart serve --factory` target: create_app() as redcart.asgi builds it, and
    /__bench/writer."""
    from redcart.app import create_app
    from redcart.settings import Settings
    from redcart.wiring import build_commerce

    settings = Settings.from_env()
    runtime = build_commerce(settings)
    inner = create_app(settings, runtime)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__bench/writer":
            writer = runtime.writer
            body = json.dumps(
                {
                    **writer.stats,
                    "cache_size": len(writer._cache),
                    "queue": writer._queue.qsize(),
                    "writer_tid": writer._thread.native_id if writer._thread else None,
                    "lists_position": runtime.lists.position,
                    "threads": {t.native_id: t.name for t in threading.enumerate()},
                }
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return app


class _Server:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, db_url: str) -> None:
        self.proc, self.port, self.log_path, self.db_url = proc, port, log_path, db_url
        self.pid = proc.pid

    def get_json(self, path: str, timeout: float = 2.0) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            return json.loads(r.read())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> str:
        """Graceful stop (SIGTERM, then SIGKILL); returns the server's log lines of note."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.log_tail(20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _serve_command(app: str, port: int, server: str = "uvicorn", workers: int = 1) -> list[str]:
    """A benchmark's API server: `redcart serve` on 127.0.0.1 with `app` (a factory) in place of
    the plain app, so that it runs with the same server options as production
    (redcart.serving). Run it with REDCART_SANDBOX_AUTOSTART=0: benchmarks start no gateways."""
    return [
        sys.executable, "-m", "redcart.cli", "serve", "--server", server,
        "--app", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip


@contextlib.contextmanager
def _server(env: dict[str, str], log_path: Path) -> Iterator[_Server]:
    port = _free_port()
    cmd = _serve_command(SERVER_APP, port, workers=WORKERS)
    log = log_path.open("wb")
    env = {**env, "REDCART_PROJECTIONS": PROJECTIONS, "REDCART_SANDBOX_AUTOSTART": "0"}
    projection_worker = None
    if PROJECTIONS == "worker":
        projection_worker = subprocess.Popen(
            [sys.executable, "-m", "redcart.cli", "worker", "projections"],
            cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
        preexec_fn=_die_with_parent,
    )
    server = _Server(proc, port, log_path, env["REDCART_DATABASE_URL"])
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}):\n{server.log_tail()}")
            try:
                if server.get_json("/readyz", timeout=1).get("status") == "ready":
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in 60 s:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
        if projection_worker is not None:
            projection_worker.terminate()
            try:
                projection_worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                projection_worker.kill()
        log.close()


# -- CPU accounting (from /proc, so other load on the machine shows up as "other") -------------


def _ticks(path: str) -> int:
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _system_ticks() -> tuple[int, int, int]:
    """Busy (steal included), all, and stolen ticks of the whole machine."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8]), values[7]


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _postmaster_pid(db_url: str) -> int | None:
    """The local PostgreSQL server's main pid, if it runs on this machine."""
    import psycopg

    with psycopg.connect(db_url, connect_timeout=5) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        try:
            with open(f"/proc/{backend}/stat") as f:
                fields = f.read().rsplit(")", 1)
            if "(postgres" not in fields[0]:
                return None
            return int(fields[1].split()[1])
        except (OSError, ValueError):
            return None


@dataclass
class _CpuSnapshot:
    at: float
    busy: int
    total: int
    steal: int
    own: int
    server_threads: dict[int, int]
    postgres: int


def _snapshot(server_pid: int | None, postmaster: int | None) -> _CpuSnapshot:
    busy, total, steal = _system_ticks()
    threads: dict[int, int] = {}
    if server_pid:  # its threads, and its worker processes' threads (--workers)
        for pid in [server_pid, *_children(server_pid)]:
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    threads[int(tid)] = _ticks(f"/proc/{pid}/task/{tid}/stat")
    pg = 0
    if postmaster:
        pg = _ticks(f"/proc/{postmaster}/stat") + sum(
            _ticks(f"/proc/{pid}/stat") for pid in _children(postmaster)
        )
    own = sum(os.times()[:2])
    return _CpuSnapshot(time.perf_counter(), busy, total, steal, round(own * CLK_TCK), threads, pg)


def _cpu_breakdown(
    a: _CpuSnapshot, b: _CpuSnapshot, names: dict[int, str] | None = None
) -> dict[str, Any]:
    """CPU used between two snapshots, in cores (1.0 = one core fully busy)."""
    wall = b.at - a.at
    cores = lambda ticks: round(ticks / CLK_TCK / wall, 2)  # noqa: E731
    ncpu = max(1, (b.total - a.total) / CLK_TCK / wall)
    threads = {tid: t - a.server_threads.get(tid, 0) for tid, t in b.server_threads.items()}
    server = sum(threads.values())
    out: dict[str, Any] = {
        "machine_busy": cores(b.busy - a.busy),
        "machine_cores": round(ncpu),
        "steal": cores(b.steal - a.steal),  # taken back by the hypervisor (in machine_busy)
        "bench_process": cores(b.own - a.own),
        "postgres": cores(b.postgres - a.postgres) if b.postgres else None,
    }
    if b.server_threads:
        out["server_process"] = cores(server)
        names = names or {}
        top = sorted(threads.items(), key=lambda kv: -kv[1])[:4]
        out["server_threads"] = {
            names.get(tid, f"tid {tid}"): cores(ticks) for tid, ticks in top if ticks > 0
        }
    known = (b.own - a.own) + server + (b.postgres - a.postgres)
    out["other"] = cores(max(0, (b.busy - a.busy) - known))
    return out


# -- the HTTP phase ----------------------------------------------------------------------------


def _load(server: _Server, seed: Seed, clients: int, seconds: float, console: Any) -> dict:
    import uvloop

    from bench import httpload

    port = server.port
    heads = []
    for i in range(clients):
        _, token = seed.buyers[i % len(seed.buyers)]
        heads.append(
            (
                f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            ).encode()
        )

    def make_request(client: int, n: int) -> bytes:
        body = json.dumps(order_body(seed, client, n), ensure_ascii=False).encode()
        return b"%sIdempotency-Key: bench-%d-%d\r\nContent-Length: %d\r\n\r\n%s" % (
            heads[client],
            client,
            n,
            len(body),
            body,
        )

    postmaster = _postmaster_pid(server.db_url)
    live = httpload.LiveCounters()
    marks: dict[str, Any] = {}

    async def observe() -> None:
        loop = asyncio.get_running_loop()

        async def writer_stats() -> dict:
            try:
                return await loop.run_in_executor(None, server.get_json, "/__bench/writer")
            except (OSError, ValueError):
                return {}

        start = time.perf_counter()
        await asyncio.sleep(WARMUP_S)
        marks["stats0"] = await writer_stats()
        marks["cpu0"] = _snapshot(server.pid, postmaster)
        last, last_ok = time.perf_counter(), live.ok
        while time.perf_counter() - start < WARMUP_S + seconds - 0.5:
            await asyncio.sleep(1.0)
            now = time.perf_counter()
            console.print(
                f"  {now - start - WARMUP_S:5.1f}s  {(live.ok - last_ok) / (now - last):7.0f} "
                f"orders/s  (total {live.ok}, errors {live.errors})"
            )
            last, last_ok = now, live.ok
        remaining = start + WARMUP_S + seconds - time.perf_counter()
        if remaining > 0:
            await asyncio.sleep(remaining)
        marks["cpu1"] = _snapshot(server.pid, postmaster)
        marks["stats1"] = await writer_stats()

    async def main() -> httpload.LoadResult:
        watcher = asyncio.create_task(observe())
        try:
            result = await httpload.closed_loop(
                "127.0.0.1", port, clients, make_request,
                seconds=seconds, warmup=WARMUP_S, live=live,
                ok=lambda status: status == 201,
            )  # fmt: skip
        except BaseException:  # Ctrl-C, errors: stop watching at once
            watcher.cancel()
            raise
        await watcher  # it takes the closing CPU snapshot at the end of the window
        return result

    result = uvloop.run(main())
    s0, s1 = marks.get("stats0", {}), marks.get("stats1", {})
    writer = None
    if s1 and WORKERS == 1:  # with several workers each answer comes from one of them
        batches = s1["batches"] - s0.get("batches", 0)
        commands = s1["commands"] - s0.get("commands", 0)
        writer = {
            "batches": batches,
            "commands": commands,
            "mean_batch": round(commands / batches, 1) if batches else None,
            "replays": s1["replays"] - s0.get("replays", 0),
            "batches_per_s": round(batches / seconds, 1),
            "cache_size": s1["cache_size"],
        }
    names = {}
    if s1:
        names = {int(k): v for k, v in s1.get("threads", {}).items()}
        names[server.pid] = "event loop (main)"
        if s1.get("writer_tid"):
            names[s1["writer_tid"]] = "group-commit writer"
    cpu = None
    if "cpu0" in marks and "cpu1" in marks:
        cpu = _cpu_breakdown(marks["cpu0"], marks["cpu1"], names)
    return {"result": result, "writer": writer, "cpu": cpu}


# -- the baseline ------------------------------------------------------------------------------


def _naive(env: dict[str, str], seed: Seed, seconds: float, console: Any) -> dict:
    from bench import naive
    from commerce.services import ordering
    from commerce.services.idempotency import Idempotency
    from redcart.settings import Settings
    from redcart.wiring import commerce_app

    settings = Settings.from_env(env)
    cfg = settings.commerce_config()
    app = commerce_app(settings, create_table=False)
    postmaster = _postmaster_pid(env["REDCART_DATABASE_URL"])

    def args_for(thread: int, n: int) -> tuple:
        buyer_id, _ = seed.buyers[thread % len(seed.buyers)]
        body = order_body(seed, thread, n)
        raw = json.dumps(body, ensure_ascii=False).encode()
        fingerprint = hashlib.sha256(b"POST /orders\n" + raw).hexdigest()
        idem = Idempotency(f"buyer:{buyer_id}", f"bench-{thread}-{n}", fingerprint)
        return (
            cfg, idem, buyer_id, seed.merchant_id,
            [(line["sku"], line["quantity"]) for line in body["lines"]],
            ordering.identify(cfg, body["identity"]["name"], body["identity"]["resident_id"]),
            body["address"],
        )  # fmt: skip

    live: dict = {"done": 0}
    marks: dict[str, Any] = {}
    stop = threading.Event()

    def observe() -> None:
        start = time.perf_counter()
        end = start + NAIVE_WARMUP_S + seconds
        if stop.wait(NAIVE_WARMUP_S):
            return
        marks["cpu0"] = _snapshot(None, postmaster)
        last, last_done = time.perf_counter(), live["done"]
        while not stop.wait(min(1.0, max(0.0, end - time.perf_counter()))):
            now = time.perf_counter()
            if now >= end - 0.01:
                marks["cpu1"] = _snapshot(None, postmaster)
                return
            rate = (live["done"] - last_done) / (now - last)
            console.print(
                f"  {now - start - NAIVE_WARMUP_S:5.1f}s  {rate:7.0f} orders/s (baseline)"
            )
            last, last_done = now, live["done"]

    watcher = threading.Thread(target=observe, name="naive-observer", daemon=True)
    watcher.start()
    try:
        figures = naive.run(
            app, ordering.place_order, args_for,
            threads=NAIVE_THREADS, seconds=seconds, warmup=NAIVE_WARMUP_S,
            ok=lambda answer: answer.status_code == 201, live=live,
        )  # fmt: skip
    finally:
        stop.set()
        watcher.join(timeout=5)
        app.close()
    if "cpu0" in marks and "cpu1" in marks:
        figures["cpu"] = _cpu_breakdown(marks["cpu0"], marks["cpu1"])
    return figures


# -- figures -----------------------------------------------------------------------------------


def _figures(
    http: dict, naive: dict, clients: int, seconds: float, machine: dict, server_log: str
) -> dict:
    from bench.httpload import percentile

    result = http["result"]
    accepted = result.statuses.get(201, 0)
    lat = sorted(result.latencies_ms.get(201, []))
    rejected = {str(s): n for s, n in sorted(result.statuses.items()) if s != 201}
    orders_per_s = accepted / seconds
    naive_lat = naive["latencies_ms"]
    naive_per_s = naive["ok"] / seconds
    figures: dict[str, Any] = {
        "benchmark": "orders",
        "orders_per_s": round(orders_per_s, 1),
        "accepted": accepted,
        "rejected": rejected,
        "errors": dict(result.errors),
        "p50_ms": _round(percentile(lat, 50)),
        "p90_ms": _round(percentile(lat, 90)),
        "p99_ms": _round(percentile(lat, 99)),
        "max_ms": _round(lat[-1] if lat else None),
        "clients": clients,
        "seconds": seconds,
        "warmup_s": WARMUP_S,
        "server": {"app": SERVER_APP, "workers": WORKERS, "projections": PROJECTIONS},
        "writer": http["writer"],
        "cpu_cores_used": http["cpu"],
        "naive_orders_per_s": round(naive_per_s, 1),
        "naive_p50_ms": _round(percentile(naive_lat, 50)),
        "naive_p99_ms": _round(percentile(naive_lat, 99)),
        "naive_threads": NAIVE_THREADS,
        "naive_outcomes": naive["outcomes"],
        "naive_conflicts": naive["conflicts"],
        "naive_cpu_cores_used": naive.get("cpu"),
        "speedup": round(orders_per_s / naive_per_s, 2) if naive_per_s else None,
        "goal": {"orders_per_s": 1000, "p99_ms": 100},
        "machine": machine,
    }
    if rejected:
        figures["rejected_samples"] = {
            str(s): body.decode(errors="replace")[:300]
            for s, body in result.samples.items()
            if s != 201
        }
    noteworthy = [ln for ln in server_log.splitlines() if ln.strip() and "Shutting down" not in ln]
    if noteworthy:
        figures["server_log_tail"] = noteworthy[-10:]
    return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _machine(db_url: str) -> dict:
    import psycopg

    cpu_model = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        pg = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        }
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "python_loop_ms": python_loop_ms(),  # the spell: lower is a faster machine
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgres": pg.pop("server_version"),
        "postgres_settings": pg,
    }


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the cleanup below runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
