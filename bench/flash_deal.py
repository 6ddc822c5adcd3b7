"""`redcart bench flash-deal`: claim attempts per second on one hot flash deal, over HTTP.

What runs:
1. A throwaway database `redcart_bench_<random>` (as bench.orders), `redcart migrate`, then
   through the use cases: one merchant, a bonded warehouse, one product with stock, `buyers`
   buyers (tokens and valid resident IDs).
2. The API as its own process (`redcart serve --server granian`, the sale tier's server, one worker
   unless told otherwise: bench.flash_deal_server; REDCART_BENCH_SERVER=uvicorn for the default
   server) with the list views kept by `redcart worker projections` (the PostgreSQL topology). Over
   HTTP as the host merchant: a live session, started, and two deals (10 s countdown, per-buyer
   limit 1): a warm-up deal of 500 units and the measured deal of `units` units.
3. Once they are open, load-generator processes (bench.flash_deal_load) send
   POST /live/deals/{id}/claims at a fixed arrival rate (open loop: due times are fixed in
   advance, latency runs from the due time, so a slow server cannot hide behind a slower
   client), each from a random buyer with a fresh Idempotency-Key: `warmup` seconds at the
   warm-up deal, a pause, then `seconds` at the measured deal. Once a deal sells out nearly every
   attempt is a 409: still an attempt the server had to decide and answer.
4. After the run, from the stores: the deal's claims against its quantity and the 201s, one
   order per claim, the stock hold, the per-buyer limit (bench.flash_deal_seed.check).
5. The baseline on a second throwaway database: the same deal claimed in-process by 16 threads,
   one repository load and one `app.save` per claim, retrying on IntegrityError
   (bench.flash_deal_naive).

Knobs (the `redcart bench` command passes only seconds and clients): keyword arguments of
`run`, else REDCART_BENCH_RATE (3000 attempts/s), REDCART_BENCH_UNITS (1000),
REDCART_BENCH_BUYERS (2000), REDCART_BENCH_GENERATORS (1 process), REDCART_BENCH_WARMUP (2 s;
0: no warm-up deal), REDCART_BENCH_PAUSE (3 s with nothing sent between the warm-up deal and the
measured one, so the warm-up's orders and read-model work are done before the measured sale, as
an earlier sale's would be), REDCART_BENCH_SERVER (granian | uvicorn: `redcart serve --server`),
REDCART_BENCH_API_WORKERS (1: API processes, as `redcart serve
--workers`; with more, claims reaching a process that does not own the deal are forwarded to the
one that does, and the writers' batch counters come from one of them); REDCART_BENCH_PROJECTIONS
(worker | inprocess), REDCART_BENCH_PROFILE (1 or a directory: cProfile every server thread over
the measured window; one API process only). `clients` is how many keep-alive connections are
opened before the start (at least rate × 0.1 s); more are opened while all are busy, up to 4×
that (at least 512); beyond, attempts queue for a free connection, their latency still counting
from the due time. An attempt unanswered 10 s after
its due time is an error; the server may still have decided it (the checks allow for that).
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.flash_deal_drive import TIMEOUT_S, drive
from bench.flash_deal_report import figures_of, print_summary
from bench.flash_deal_seed import COUNTDOWN_S, check, open_deals, prepare, wait_for_orders
from bench.flash_deal_server import server
from redcart.serving import SERVERS

WARMUP_UNITS = 500
NAIVE_THREADS = 16
NAIVE_WARMUP_S = 1.0
PROJECTIONS = os.environ.get("REDCART_BENCH_PROJECTIONS") or "worker"
HTTP_SERVER = os.environ.get("REDCART_BENCH_SERVER") or "granian"
# where claims' orders are placed: a `redcart worker claim-orders` process, or "inprocess"
CLAIM_ORDERS = os.environ.get("REDCART_BENCH_CLAIM_ORDERS") or "worker"


def _knob(value: Any, name: str, default: Any) -> Any:
    if value is not None:
        return type(default)(value)
    raw = os.environ.get(name)
    return type(default)(raw) if raw else default


def run(
    seconds: float = 10.0,
    clients: int = 64,
    progress: bool = True,
    *,
    rate: float | None = None,
    units: int | None = None,
    buyers: int | None = None,
    generators: int | None = None,
    warmup: float | None = None,
    pause: float | None = None,
    api_workers: int | None = None,
) -> dict:
    """Measure; returns the figures (see the module docstring). Progress goes to stderr."""
    from rich.console import Console

    from bench.flash_deal_naive import run_naive
    from bench.orders import (
        DEFAULT_SERVER,
        _env,
        _machine,
        _terminate_on_sigterm,
        _throwaway_database,
    )

    rate = _knob(rate, "REDCART_BENCH_RATE", 3000.0)
    units = _knob(units, "REDCART_BENCH_UNITS", 1000)
    buyers = _knob(buyers, "REDCART_BENCH_BUYERS", 2000)
    generators = _knob(generators, "REDCART_BENCH_GENERATORS", 1)
    warmup = _knob(warmup, "REDCART_BENCH_WARMUP", 2.0)
    pause = _knob(pause, "REDCART_BENCH_PAUSE", 3.0)
    api_workers = _knob(api_workers, "REDCART_BENCH_API_WORKERS", 1)
    if seconds <= 0 or rate <= 0 or min(units, buyers, generators, api_workers) < 1:
        raise ValueError("seconds, rate, units, buyers, generators, api_workers must be positive")
    if min(warmup, pause) < 0:
        raise ValueError("warm-up and pause must not be negative")
    if HTTP_SERVER not in SERVERS:
        raise ValueError(f"REDCART_BENCH_SERVER: one of {', '.join(SERVERS)}")
    if warmup + pause + seconds > 1000:
        raise ValueError("a deal lasts at most 20 minutes: keep warm-up + pause + seconds < 1000")
    console = Console(stderr=True, quiet=not progress, highlight=False, soft_wrap=True)
    warm_units = min(WARMUP_UNITS, units) if warmup > 0 else 0
    duration_s = min(20 * 60, max(60, math.ceil(warmup + pause + seconds + 120)))
    prewarm = max(clients, math.ceil(rate * 0.1))
    profile_dir = _profile_dir()
    if profile_dir and api_workers > 1:
        raise ValueError("REDCART_BENCH_PROFILE profiles one API process: leave api_workers at 1")
    with _terminate_on_sigterm(), contextlib.ExitStack() as cleanup:
        server_url = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redcart-bench-")))
        admin_key, secret_key = secrets.token_urlsafe(24), secrets.token_urlsafe(32)

        t = time.perf_counter()
        db_url = cleanup.enter_context(_throwaway_database(server_url))
        env = _env(db_url, tmp / "http", admin_key, secret_key)
        seed = prepare(env, buyers, stock=units + warm_units + 10)
        console.print(
            f"[dim]bench flash-deal: database {db_url.rsplit('/', 1)[1]} seeded in "
            f"{time.perf_counter() - t:.1f}s ({buyers} buyers)[/]"
        )
        server_env = {**env, **({"REDCART_BENCH_PROFILE": "1"} if profile_dir else {})}
        log = tmp / "server.log"
        with server(server_env, log, PROJECTIONS, api_workers, CLAIM_ORDERS, HTTP_SERVER) as api:
            machine = _machine(db_url)
            deals = open_deals(
                f"http://127.0.0.1:{api.port}", seed, [q for q in (warm_units, units) if q],
                duration_s,
            )  # fmt: skip
            console.print(
                f"[dim]server pid {api.pid} on port {api.port}; deal of {units} units opens in "
                f"{COUNTDOWN_S}s; {api_workers} API process(es); "
                f"{rate:g} attempts/s from {generators} generator process(es), "
                f"{warmup:g}s warm-up deal ({warm_units} units) + {pause:g}s pause "
                f"+ {seconds:g}s[/]"
            )
            http = drive(
                api, seed, deals, rate=rate, seconds=seconds, warmup=warmup,
                pause=pause, generators=generators, prewarm=prewarm, tmp=tmp, console=console,
                profile_dir=profile_dir,
            )  # fmt: skip
            orders_after_s = wait_for_orders(db_url, env)  # placed after the claims' answers
            server_log = api.stop()
        won = sum(1 for row in http["rows"] if row[0] == 201)
        unanswered = sum(1 for row in http["rows"] if row[0] == 0)
        checks = check(env, seed, UUID(deals[-1]["id"]), won, unanswered)
        checks["orders_caught_up_after_load_s"] = orders_after_s
        warm_checks = None
        if warm_units:
            warm = {k.split()[0]: 0 for k in http["warmup"]}
            for k, n in http["warmup"].items():
                warm[k.split()[0]] += n
            warm_checks = check(
                env, seed, UUID(deals[0]["id"]), warm.get("201", 0), warm.get("0", 0)
            )

        db2_url = cleanup.enter_context(_throwaway_database(server_url))
        env2 = _env(db2_url, tmp / "naive", admin_key, secret_key)
        console.print(
            f"[dim]baseline: {NAIVE_THREADS} threads claim one {units}-unit deal in-process, "
            f"load + save + retry on conflict, {NAIVE_WARMUP_S:g}s warm-up + {seconds:g}s[/]"
        )
        naive = run_naive(env2, units, buyers, seconds, NAIVE_WARMUP_S, NAIVE_THREADS, console)

    settings = {
        "rate": rate, "seconds": seconds, "warmup_s": warmup, "pause_s": pause, "units": units,
        "buyers": buyers,
        "generators": generators, "api_workers": api_workers, "prewarmed_connections": prewarm,
        "timeout_s": TIMEOUT_S,
        "max_connections": max(4 * prewarm, 512),
        "projections": PROJECTIONS, "claim_orders": CLAIM_ORDERS, "server": HTTP_SERVER,
        "naive_threads": NAIVE_THREADS,
    }  # fmt: skip
    figures = figures_of(settings, http, checks, warm_checks, naive, machine, server_log)
    if progress:
        print_summary(console, figures)
    return figures


def _profile_dir() -> Path | None:
    raw = os.environ.get("REDCART_BENCH_PROFILE", "")
    if raw in ("", "0"):
        return None
    if raw == "1":
        return Path(tempfile.mkdtemp(prefix="redcart-flash-profile-"))
    return Path(raw).resolve()
