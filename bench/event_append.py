"""`redcart bench event-append`: one save of a batch of events on PostgreSQL, eventsourcing's
pipelined transaction (the baseline) against one call of the append function
(commerce.platform.pg_append), idle and beside a thread that holds the GIL.

Why the second condition: in a flash sale the API's event loop keeps the GIL busy, and a thread
that waited on the database gets it back only after the loop is made to yield (the switch
interval, 5 ms). A save's wall time then depends less on its CPU than on how many times it
waits on the server. The GIL holder here is a plain Python loop, a stand-in for that event loop.

What runs, on a throwaway database: `saves` saves per batch size, each of a batch of new
events (one per aggregate) carrying a flash claim's order inputs, as the deal writer's saves
do; both paths write to the same table, alternately, in the same run.

Knobs: REDCART_BENCH_BATCHES (20,100), REDCART_BENCH_SAVES (40 per batch size and path).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import time
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.deal_writer import ORDER
from bench.orders import DEFAULT_SERVER, _machine, throwaway_event_store


class _Claimable(Aggregate):
    def __init__(self) -> None:
        self.claims: list[str] = []

    @event("Claimed")
    def claim(self, claim_id: str, buyer_id: str, order: dict) -> None:
        self.claims.append(claim_id)


class _AppendBench(Application):
    name = "AppendBench"


class _GilHolder:
    """A thread that runs Python bytecode until stopped, as a busy event loop does."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="gil-holder", daemon=True)

    def _spin(self) -> None:
        x = 0
        while not self._stop.is_set():
            for i in range(1_000):
                x += i

    def __enter__(self) -> _GilHolder:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _save_times(app: Application, batch: int, saves: int) -> dict[str, float]:
    walls, cpus = [], []
    for n in range(saves):
        aggregates = [_Claimable() for _ in range(batch)]
        for i, aggregate in enumerate(aggregates):
            aggregate.claim(f"claim-{n}-{i}", f"buyer-{i}", ORDER)
        t, c = time.perf_counter(), time.thread_time()
        app.save(*aggregates)
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - t)
    q = statistics.quantiles(walls, n=10)
    return {
        "wall_ms_p50": round(statistics.median(walls) * 1000, 2),
        "wall_ms_p90": round(q[-1] * 1000, 2),
        "cpu_ms_p50": round(statistics.median(cpus) * 1000, 2),
    }


def run(seconds: float = 10.0, clients: int = 0, progress: bool = True) -> dict:
    """`seconds` and `clients` are not used: the run is a number of saves."""
    from rich.console import Console

    batches = [int(b) for b in (os.environ.get("REDCART_BENCH_BATCHES") or "20,100").split(",")]
    saves = int(os.environ.get("REDCART_BENCH_SAVES") or 40)
    if saves < 2 or not batches or min(batches) < 1:
        raise ValueError("REDCART_BENCH_SAVES must be at least 2, REDCART_BENCH_BATCHES ≥ 1")
    console = Console(stderr=True, quiet=not progress, highlight=False)
    server_url = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as cleanup:
        env = throwaway_event_store(cleanup, _AppendBench)
        function = cleanup.enter_context(contextlib.closing(_AppendBench(env=env)))
        library_env = {k: v for k, v in env.items() if k != "APPLICATION_RECORDER_TOPIC"}
        pipeline = cleanup.enter_context(contextlib.closing(_AppendBench(env=library_env)))
        for app in (function, pipeline):  # connections open, statements prepared
            _save_times(app, 5, 3)
        for batch in batches:
            for condition in ("idle", "gil_held"):
                holder = _GilHolder() if condition == "gil_held" else contextlib.nullcontext()
                with holder:
                    row: dict[str, Any] = {"batch": batch, "condition": condition}
                    row["pipeline"] = _save_times(pipeline, batch, saves)
                    row["function"] = _save_times(function, batch, saves)
                p50 = row["pipeline"]["wall_ms_p50"], row["function"]["wall_ms_p50"]
                row["wall_ratio_p50"] = round(p50[0] / p50[1], 1) if p50[1] else None
                console.print(
                    f"  batch {batch:>4} {condition:>8}: pipeline {p50[0]:.1f} ms, "
                    f"one call {p50[1]:.1f} ms (×{row['wall_ratio_p50']})"
                )
                results.append(row)
    return {
        "benchmark": "event-append",
        "saves_per_cell": saves,
        "switch_interval_ms": round(sys.getswitchinterval() * 1000, 2),
        "results": results,
        "baseline": "pipeline: eventsourcing 9.5.6's own save (PostgresApplicationRecorder)",
        "machine": _machine(server_url),
    }
