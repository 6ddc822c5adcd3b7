"""The API server of `redcart bench flash-deal`: the real app in its own `redcart serve` process.

`instrumented_app` is a `redcart serve --factory` target: exactly redcart.asgi's create_app(),
behind a pass-through ASGI wrapper adding /__bench/stats: both writers' batch counters, which thread
is which (for the CPU split), and the event loop's lag (how late a task sleeping 10 ms wakes,
sampled all along, so the report shows whether the loop itself was the queue). With
REDCART_BENCH_PROFILE=1 every thread of the server runs under its own cProfile;
/__bench/profile/mark and /__bench/profile/dump?dir=… take the difference between two moments
(the measured window), write one .prof file per thread and answer the top functions by own
time: CPU time of the thread, or with REDCART_BENCH_PROFILE_CLOCK=wall wall-clock time (waits
included). Profiling roughly doubles the server's CPU per request: use it to see where time
goes, not for the figures.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import cProfile
import http.server
import json
import marshal
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bench.orders import REPO, _die_with_parent, _free_port, _serve_command, _Server

APP = "bench.flash_deal_server:instrumented_app"
PROFILE_ENV = "REDCART_BENCH_PROFILE"


class _Profiles:
    """One cProfile per thread: the event loop's from here, every later thread's from its start
    (threads started before the factory runs are not profiled)."""

    def __init__(self) -> None:
        self.by_thread: dict[int, tuple[str, cProfile.Profile]] = {}
        self.marked: dict[int, dict] = {}

    def install(self, clock: str) -> None:
        # "cpu": each thread's own CPU time, so waits (GIL, locks, I/O) cost nothing; "wall":
        # perf_counter, where GIL starvation shows up as slow GIL-releasing calls.
        timer = (lambda: cProfile.Profile(time.thread_time)) if clock == "cpu" else cProfile.Profile
        main = timer()
        self.by_thread[threading.get_native_id()] = ("event loop (main)", main)
        by_thread = self.by_thread
        bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

        def profiled(thread: threading.Thread) -> None:
            profile = timer()
            by_thread[threading.get_native_id()] = (thread.name, profile)
            profile.enable()
            try:
                bootstrap(thread)
            finally:
                profile.disable()

        threading.Thread._bootstrap_inner = profiled  # type: ignore[attr-defined]
        main.enable()

    def _now(self) -> dict[int, dict]:
        stats = {}
        for tid, (_, profile) in list(self.by_thread.items()):
            profile.snapshot_stats()  # reads without disabling (threads keep running)
            stats[tid] = dict(profile.stats)  # type: ignore[attr-defined]
        return stats

    def mark(self) -> None:
        self.marked = self._now()

    def dump(self, out_dir: Path, names: dict[int, str]) -> dict[str, Any]:
        import pstats

        out_dir.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = {"dir": str(out_dir), "threads": {}}
        combined = None
        for tid, stats in self._now().items():
            delta = _subtract(stats, self.marked.get(tid, {}))
            own = sum(v[2] for v in delta.values())
            if own < 0.01:
                continue
            name = names.get(tid) or self.by_thread[tid][0]
            path = out_dir / f"{name.replace(' ', '_').replace('/', '_')}-{tid}.prof"
            with path.open("wb") as f:
                marshal.dump(delta, f)
            st = pstats.Stats(str(path))
            combined = pstats.Stats(str(path)) if combined is None else combined.add(str(path))
            summary["threads"][f"{name} ({tid})"] = {"own_s": round(own, 3), "top": _top(st, 12)}
        if combined is not None:
            summary["all_threads_top"] = _top(combined, 25)
        return summary


def _subtract(now: dict, then: dict) -> dict:
    delta = {}
    for func, (cc, nc, tt, ct, callers) in now.items():
        old = then.get(func)
        if old is not None:
            cc, nc, tt, ct = cc - old[0], nc - old[1], tt - old[2], ct - old[3]
            was = old[4]
            callers = {
                k: tuple(a - b for a, b in zip(v, was.get(k, (0, 0, 0, 0)), strict=True))
                for k, v in callers.items()
            }
            callers = {k: v for k, v in callers.items() if v[0] > 0}
        if nc > 0:
            delta[func] = (cc, nc, tt, ct, callers)
    return delta


def _top(stats: Any, n: int) -> list[dict]:
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:n]
    return [
        {
            "fn": f"{Path(f).name}:{line}({fn})",
            "own_ms": round(tt * 1000, 1),
            "cum_ms": round(ct * 1000, 1),
            "calls": nc,
        }
        for (f, line, fn), (_, nc, tt, ct, _) in rows
    ]


def instrumented_app() -> Any:
    """`redcart serve --factory` target: create_app() as redcart.asgi builds it, plus /__bench/*."""
    profiles = None
    if os.environ.get(PROFILE_ENV, "") not in ("", "0"):
        profiles = _Profiles()
        profiles.install(os.environ.get("REDCART_BENCH_PROFILE_CLOCK") or "cpu")
    from redcart.app import create_app
    from redcart.settings import Settings
    from redcart.wiring import build_commerce

    settings = Settings.from_env()
    runtime = build_commerce(settings)
    inner = create_app(settings, runtime)
    live = inner.dependencies["live"].dependency()

    def names() -> dict[int, str]:
        found = {t.native_id: t.name for t in threading.enumerate() if t.native_id}
        found[os.getpid()] = "event loop (main)"
        for label, writer in (("commerce", runtime.writer), ("live", live.writer)):
            if writer._thread is not None and writer._thread.native_id:
                found[writer._thread.native_id] = f"{label} writer"
            for t in getattr(writer._saver, "_threads", ()):
                if t.native_id:
                    found[t.native_id] = f"{label} saver"
        return found

    lags: collections.deque[tuple[float, float]] = collections.deque(maxlen=100_000)
    probing: list[asyncio.Task] = []

    def stats(lag: bool = False) -> dict[str, Any]:
        """`lag`: with the loop's lag samples, asked for once the window has closed only (the
        window's opening mark would copy and send thousands of them as the sale starts)."""
        answer = {
            "commerce_writer": dict(runtime.writer.stats),
            "live_writer": dict(live.writer.stats),
            "threads": names(),
            "profiling": profiles is not None,
        }
        if lag:
            answer["loop_lag"] = list(lags)  # [time.monotonic() when it slept, ms late]
        return answer

    _serve_stats_off_the_loop(stats)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if not probing:  # the lifespan's startup comes first: from then on
            probing.append(asyncio.get_running_loop().create_task(_lag_probe(lags)))
        if scope["type"] != "http" or not scope["path"].startswith("/__bench/"):
            await inner(scope, receive, send)
            return
        path = scope["path"]
        if path == "/__bench/stats":
            answer: Any = stats(lag=b"lag" in scope.get("query_string", b""))
        elif path == "/__bench/profile/mark" and profiles is not None:
            profiles.mark()
            answer = {"marked": True}
        elif path == "/__bench/profile/dump" and profiles is not None:
            query = parse_qs(scope.get("query_string", b"").decode())
            answer = profiles.dump(Path(query["dir"][0]), names())
        else:
            answer = {"error": "not available"}
        body = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


LAG_PROBE_S = 0.01


async def _lag_probe(lags: collections.deque[tuple[float, float]]) -> None:
    """How late the event loop runs a task that sleeps 10 ms: the time it waits behind the
    loop's other work (or for the GIL, or for a core)."""
    while True:
        slept = time.monotonic()
        await asyncio.sleep(LAG_PROBE_S)
        lags.append((slept, round((time.monotonic() - slept - LAG_PROBE_S) * 1000, 2)))


STATS_PORT_ENV = "REDCART_BENCH_STATS_PORT"


def _serve_stats_off_the_loop(stats: Any) -> None:
    """The writers' counters on a port of their own, answered by a thread: asked through the
    API, an overloaded event loop answered the window's opening mark after the sale it was to
    precede (counters that showed 18 batches for 1,000 claims). With several API workers the
    first to bind the port answers."""
    port = int(os.environ.get(STATS_PORT_ENV) or 0)
    if not port:
        return

    class Stats(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(stats(lag="lag" in self.path)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Stats)
    except OSError:  # another API worker answers
        return
    threading.Thread(target=server.serve_forever, name="bench-stats", daemon=True).start()


# The workers' CPU priority (nice, or "idle": SCHED_IDLE, the CPU only when nothing else wants
# it): on a machine shared with the API, background work (orders placed from claims, read
# models) yields the CPU to the claims being answered.
WORKER_NICE = os.environ.get("REDCART_BENCH_WORKER_NICE", "10")


def _background() -> None:  # runs in a worker's child between fork and exec
    _die_with_parent()
    if WORKER_NICE == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(int(WORKER_NICE))


@contextlib.contextmanager
def server(
    env: dict[str, str],
    log_path: Path,
    projections: str,
    workers: int = 1,
    claim_orders: str = "worker",
    http_server: str = "granian",
) -> Iterator[_Server]:
    """The API (`redcart serve --server http_server --workers workers`, on uvloop)
    and, with projections="worker", the `redcart worker projections` process, with
    claim_orders="worker" the `redcart worker claim-orders` process (the PostgreSQL
    production topology). With several workers each is a deal's owner or forwards to it, and
    /__bench/stats answers from whichever worker takes the request."""
    port = _free_port()
    cmd = _serve_command(APP, port, http_server, workers)
    log = log_path.open("wb")
    env = {**os.environ, **env, "REDCART_PROJECTIONS": projections, "PYTHONUNBUFFERED": "1"}
    env["REDCART_SANDBOX_AUTOSTART"] = "0"  # claims take no payment
    env["REDCART_CLAIM_ORDERS"] = claim_orders
    stats_port = env[STATS_PORT_ENV] = str(_free_port())
    children = []
    try:

        def worker(*args: str) -> None:  # `redcart worker ...`, niced, dies with us
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "redcart.cli", "worker", *args],
                    cwd=REPO,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_background,
                )
            )

        if claim_orders == "worker":
            worker("claim-orders")
        if projections == "worker":
            # one process for all read models: on 2 cores a process per read model spends the
            # CPU the claims need (REDCART_BENCH_WORKER_SPLIT=1 to compare)
            split = os.environ.get("REDCART_BENCH_WORKER_SPLIT") == "1"
            worker("projections", *([] if split else ["--inline"]))
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        api = _Server(proc, port, log_path, env["REDCART_DATABASE_URL"])
        api.stats_port = stats_port  # type: ignore[attr-defined]
        api.worker_pids = [c.pid for c in children]  # type: ignore[attr-defined]
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited ({proc.returncode}):\n{api.log_tail()}")
                with contextlib.suppress(OSError, ValueError):
                    if api.get_json("/readyz", timeout=1).get("status") == "ready":
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server was not ready in 60 s:\n{api.log_tail()}")
                time.sleep(0.1)
            yield api
        finally:
            api.stop()
    finally:
        for child in children:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        log.close()
