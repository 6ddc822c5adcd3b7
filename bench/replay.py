"""`redcart bench replay`: reading an aggregate back from PostgreSQL, and saving a batch of
events, with eventsourcing 9.5.6's own Application (the baseline) against the contexts' base
(commerce.platform.replay: the same, less a runtime Protocol check per event).

What runs, on a throwaway database, both applications on the same table, alternately in the
same run: aggregates of 1, 10, 100 and 1,000 events (a buyer has one or two; a flash deal one per
claim) each read `reads` times, and `saves` saves of a batch of 100 new events (one per
aggregate) as the deal writer's saver makes them. Figures are each cell's median and best.

Knobs: REDCART_BENCH_SIZES (1,10,100,1000), REDCART_BENCH_READS (30), REDCART_BENCH_SAVES (30).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.orders import DEFAULT_SERVER, _machine, throwaway_event_store
from commerce.platform.replay import EventSourcedApplication, save_events

SAVE_BATCH = 100


class _Deal(Aggregate):
    def __init__(self) -> None:
        self.claims: dict[str, int] = {}

    @event("Claimed")
    def claim(self, claim_id: str, buyer_id: str, quantity: int) -> None:
        self.claims[claim_id] = quantity


class _Library(Application):
    name = "ReplayBench"


class _Ours(EventSourcedApplication):
    name = "ReplayBench"


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "best_ms": round(min(samples) * 1000, 3),
    }


def _timed(action: Callable[[], Any], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        t = time.perf_counter()
        action()
        samples.append(time.perf_counter() - t)
    return samples


def _stored_deal(app: Application, events: int) -> Any:
    deal = _Deal()
    for i in range(events - 1):
        deal.claim(f"claim-{i}", f"buyer-{i % 2000}", 1)
    app.save(deal)
    return deal.id


def _fresh_claims() -> list[Any]:
    deals = [_Deal() for _ in range(SAVE_BATCH)]
    for i, deal in enumerate(deals):
        deal.claim(f"claim-{i}", f"buyer-{i}", 1)
    return [e for deal in deals for e in deal.collect_events()]


def _ratio(library: dict[str, float], ours: dict[str, float]) -> float | None:
    return round(library["median_ms"] / ours["median_ms"], 2) if ours["median_ms"] else None


def run(seconds: float = 10.0, clients: int = 0, progress: bool = True) -> dict:
    """`seconds` and `clients` are not used: the run is a number of reads and saves."""
    from rich.console import Console

    sizes = [int(s) for s in (os.environ.get("REDCART_BENCH_SIZES") or "1,10,100,1000").split(",")]
    reads = int(os.environ.get("REDCART_BENCH_READS") or 30)
    saves = int(os.environ.get("REDCART_BENCH_SAVES") or 30)
    if min(sizes) < 1 or reads < 1 or saves < 1:
        raise ValueError("sizes, REDCART_BENCH_READS and REDCART_BENCH_SAVES must be ≥ 1")
    console = Console(stderr=True, quiet=not progress, highlight=False)
    server_url = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as cleanup:
        env = throwaway_event_store(cleanup, _Library)
        library = cleanup.enter_context(contextlib.closing(_Library(env=env)))
        ours = cleanup.enter_context(contextlib.closing(_Ours(env=env)))
        for size in sizes:
            deal_id = _stored_deal(library, size)
            for app in (library, ours):  # connections open, statements prepared
                app.repository.get(deal_id)
            cell: dict[str, list[float]] = {"library": [], "ours": []}
            for _ in range(reads):  # alternately, so a change of spell hits both alike
                cell["library"] += _timed(lambda i=deal_id: library.repository.get(i), 1)
                cell["ours"] += _timed(lambda i=deal_id: ours.repository.get(i), 1)
            row = {"read_events": size, "library": _ms(cell["library"]), "ours": _ms(cell["ours"])}
            row["ratio"] = _ratio(row["library"], row["ours"])
            console.print(f"  read of {size:>5} events: ×{row['ratio']}")
            rows.append(row)
        cell = {"library": [], "ours": []}
        for _ in range(saves):
            batch = _fresh_claims()
            cell["library"] += _timed(lambda b=batch: library.save(*b), 1)
            batch = _fresh_claims()
            cell["ours"] += _timed(lambda b=batch: save_events(ours, b), 1)
        save_row = {"save_events": SAVE_BATCH, "library": _ms(cell["library"])}
        save_row |= {"ours": _ms(cell["ours"])}
        save_row["ratio"] = _ratio(save_row["library"], save_row["ours"])
        console.print(f"  save of {SAVE_BATCH} events: ×{save_row['ratio']}")
    return {
        "benchmark": "replay",
        "reads": rows,
        "save": save_row,
        "baseline": "library: eventsourcing 9.5.6's Application, Repository and save",
        "machine": _machine(server_url),
    }
