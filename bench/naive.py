"""Same-run baseline: one eventsourcing save per command, no group commit.

This is the path GroupCommitWriter replaces (research/eventsourcing.md §2.2, §4): every command
loads its aggregates from the store, runs the same use case, then calls `app.save(...)` once with
what it changed; a version clash (IntegrityError) reloads and runs it again. Nothing is cached and
nothing is shared between commands, so every command pays its own reads and its own transaction
(which, in eventsourcing 9.5.6, takes the events table's EXCLUSIVE lock).

It reuses GroupCommitWriter's UnitOfWork with a stand-in writer that reads through to the
repository, so the use case code is exactly the one the server runs.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commerce.domain.errors import DomainError
from commerce.platform.unit_of_work import UnitOfWork


class DirectLoads:
    """Quacks like GroupCommitWriter for UnitOfWork: loads from the store, caches nothing."""

    def __init__(self, app: Application) -> None:
        self.app = app

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _cache_put(self, aggregate: Aggregate) -> None:
        pass


class TooManyConflicts(RuntimeError):
    pass


def execute_once_per_save(
    app: Application, command: Callable[..., Any], *args: Any, max_retries: int = 8
) -> tuple[Any, int]:
    """Run one command with its own loads and its own save; (value, version conflicts)."""
    loads = DirectLoads(app)
    conflicts = 0
    for _attempt in range(max_retries):
        uow = UnitOfWork(loads)  # type: ignore[arg-type]
        value = command(uow, *args)
        changed = uow.changed()
        if changed:
            try:
                app.save(*changed.values())
            except IntegrityError:
                conflicts += 1
                continue
        return value, conflicts
    raise TooManyConflicts(f"gave up after {max_retries} version conflicts")


def run(
    app: Application,
    command: Callable[..., Any],
    args_for: Callable[[int, int], tuple],
    *,
    threads: int = 16,
    seconds: float = 10.0,
    warmup: float = 1.0,
    ok: Callable[[Any], bool] = lambda value: True,
    live: dict | None = None,
) -> dict:
    """`threads` threads run `command(uow, *args_for(thread, n))` back to back.

    Counts what completes inside the measured window (after `warmup`); `ok(value)` says whether a
    returned value is a success (e.g. an Answer with status 201).
    """
    begin = time.perf_counter()
    window_start, window_end = begin + warmup, begin + warmup + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    conflicts = [0]
    live = live if live is not None else {}
    live.setdefault("done", 0)
    stop = threading.Event()

    def worker(index: int) -> None:
        mine: list[float] = []
        mine_outcomes: Counter[str] = Counter()
        my_conflicts = 0
        n = 0
        perf = time.perf_counter
        while perf() < window_end and not stop.is_set():
            args = args_for(index, n)
            n += 1
            t0 = perf()
            try:
                value, clashes = execute_once_per_save(app, command, *args)
                outcome = "ok" if ok(value) else "rejected"
            except DomainError as exc:
                clashes, outcome = 0, f"rejected: {type(exc).__name__}"
            except TooManyConflicts:
                clashes, outcome = 8, "error: too many conflicts"
            except Exception as exc:
                clashes, outcome = 0, f"error: {type(exc).__name__}: {exc}"[:200]
            t1 = perf()
            live["done"] += 1
            if window_start <= t1 < window_end:
                mine_outcomes[outcome] += 1
                my_conflicts += clashes
                if outcome == "ok":
                    mine.append((t1 - t0) * 1000.0)
        with lock:
            latencies.extend(mine)
            outcomes.update(mine_outcomes)
            conflicts[0] += my_conflicts

    pool = [
        threading.Thread(target=worker, args=(i,), name=f"naive-{i}", daemon=True)
        for i in range(threads)
    ]
    try:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:  # Ctrl-C: let the workers finish their command before the app is closed
        stop.set()
        for thread in pool:
            if thread.is_alive():
                thread.join(timeout=10)
    latencies.sort()
    return {
        "window_s": seconds,
        "ok": outcomes.get("ok", 0),
        "outcomes": dict(outcomes),
        "conflicts": conflicts[0],
        "latencies_ms": latencies,
    }
