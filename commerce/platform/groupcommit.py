"""One writer per Application with group commit.

Why: eventsourcing 9.5.6 locks the events table for every save, so one save per command tops out
near 300/s here and optimistic retries on a hot aggregate collapse (research/eventsourcing.md
§4). Instead, commands queue for a single writer thread. It runs each command against cached
aggregates, so commands in a batch see each other's effects, then saves the whole batch in one
transaction. Nobody is answered before that transaction commits.

Several processes may write the same aggregates. Before each batch the writer reads the
notification log since its last look and drops cached aggregates that others have changed; a
race inside the batch window still surfaces as an IntegrityError on the (id, version) key, and
the batch is then replayed command by command on fresh state. Correctness rests on that key;
the cache only makes the common case fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commerce.domain.errors import DomainError
from commerce.platform.existence import newest_and_existing
from commerce.platform.replay import save_events
from commerce.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")
Command = Callable[..., Any]


class WriterUnavailable(RuntimeError):
    """The writer is stopped or retries kept conflicting; the caller should try again later."""


@dataclass
class _Job:
    """A decided batch: the answers it will give and the events that must commit first."""

    batch: list[_Item]
    outcomes: list[tuple[_Item, Any, BaseException | None]] = field(default_factory=list)
    touched: dict[UUID, Aggregate] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)
    saving: Future | None = None


@dataclass
class _Item:
    command: Command
    args: tuple
    probe: tuple[UUID, ...] = ()  # ids the command will look up that may well not exist
    future: Future = field(default_factory=Future)
    waiter: asyncio.Future | None = None  # an event loop's caller (submit), answered by batch


class GroupCommitWriter:
    def __init__(
        self,
        app: Application,
        *,
        max_batch: int = 256,
        cache_size: int = 50_000,
        max_retries: int = 8,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.max_batch = max_batch
        self.max_retries = max_retries
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._cache_size = cache_size
        self._seen_up_to = app.recorder.max_notification_id() or 0
        self._thread: threading.Thread | None = None
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit-save")
        self._stopping = False
        self._absent: set[UUID] = set()  # ids known, for the current batch only, to have no events
        self._accepting = threading.Lock()  # no command may slip in behind the stop sentinel
        self.stats = {"batches": 0, "commands": 0, "replays": 0}

    def on_commit_also(self, callback: Callable[[], None]) -> None:
        """Another listener to wake after each commit (e.g. a process manager)."""
        first = self.on_commit

        def both() -> None:
            if first:
                first()
            callback()

        self.on_commit = both

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> GroupCommitWriter:
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._accepting:
            self._stopping = True
            self._queue.put(None)
        if self._thread:
            self._thread.join(timeout=10)
        self._saver.shutdown(wait=True)

    # -- submitting ----------------------------------------------------------------------------
    def execute(self, command: Command, *args: Any, probe: tuple[UUID, ...] = ()) -> Any:
        """Run a command and block until it is committed (for threads, CLI and tests)."""
        return self._enqueue(command, args, probe).result()

    async def submit(self, command: Command, *args: Any, probe: tuple[UUID, ...] = ()) -> Any:
        """Run a command from the event loop; resolves once the batch holding it committed.

        `probe` names ids the command will look up that are likely absent (a new idempotency
        key, a first-time buyer): the writer checks them for the whole batch in one query.
        """
        waiter = asyncio.get_running_loop().create_future()
        self._enqueue(command, args, probe, waiter)
        try:
            return await waiter
        finally:
            # A refusal raised here would hold this frame, which holds the future, which holds
            # the refusal: a reference cycle per refused claim, left to the collector (_settle).
            del waiter

    def _enqueue(
        self,
        command: Command,
        args: tuple,
        probe: tuple[UUID, ...] = (),
        waiter: asyncio.Future | None = None,
    ) -> Future:
        item = _Item(command, args, probe, waiter=waiter)
        with self._accepting:
            if self._stopping:
                raise WriterUnavailable("the writer is shutting down")
            self._queue.put(item)
        return item.future

    # -- the writer thread ---------------------------------------------------------------------
    def _next_batch(self, first: _Item) -> list[_Item]:
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._stopping = True
                break
            batch.append(nxt)
        return batch

    def _run(self) -> None:
        """Decide batch N+1 while batch N commits (a two-stage pipeline).

        Batch N+1 is decided on top of N's uncommitted state, so it is handed to the store only
        after N committed; if N failed, both are replayed one command at a time.
        """
        committing: _Job | None = None
        while True:
            if committing is not None and self._queue.empty():
                self._finish(committing)
                committing = None
            first = self._queue.get()
            if first is None:
                break
            batch = self._next_batch(first)
            try:
                self._look_before(batch)
                job = self._decide(batch)
                if committing is not None:
                    ok = self._finish(committing, then_evict=job.touched if job else {})
                    committing = None
                    if not ok:
                        job = None
                if job is None:
                    self._replay_one_by_one(batch)
                else:
                    committing = self._commit(job)
            except Exception as exc:  # the store is down: fail what is in flight, keep serving
                log.exception("writer batch failed")
                self._cache.clear()
                if committing is not None:
                    try:  # its commit may still have gone through: answer what really happened
                        self._finish(committing)
                    except Exception:
                        lost = WriterUnavailable("the store did not answer")
                        _settle_all((item, None, lost) for item in committing.batch)
                    committing = None
                _settle_all((item, None, WriterUnavailable(str(exc))) for item in batch)
            finally:
                self._absent = set()
            if self._stopping and self._queue.empty():
                break
        if committing is not None:
            self._finish(committing)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                _settle(item, None, WriterUnavailable("the writer stopped"))

    def _decide(self, batch: list[_Item]) -> _Job | None:
        """Run every command of a batch on the cached state; None if the batch must be replayed."""
        job = _Job(batch)
        for item in batch:
            uow = UnitOfWork(self)
            try:
                value = item.command(uow, *item.args)
            except Exception as exc:
                if uow.changed() or not isinstance(exc, DomainError):
                    # A command failed half-way: its partial changes sit in shared aggregates.
                    # Start again from the store, one command at a time.
                    self._evict(uow.seen)
                    self._evict(job.touched)
                    return None
                job.outcomes.append((item, None, exc))
                continue
            job.touched.update(uow.changed())
            job.outcomes.append((item, value, None))
        for aggregate in job.touched.values():
            job.events.extend(aggregate.collect_events())
        return job

    def _commit(self, job: _Job) -> _Job:
        if job.events:
            job.saving = self._saver.submit(save_events, self.app, job.events)
        return job

    def _finish(self, job: _Job, then_evict: dict[UUID, Aggregate] | None = None) -> bool:
        """Wait for a job's commit and answer its callers; False when it had to be replayed."""
        try:
            recordings = job.saving.result() if job.saving else []
        except IntegrityError:
            self._evict(job.touched)
            self._evict(then_evict or {})
            self._replay_one_by_one(job.batch)
            return False
        except Exception:
            self._evict(job.touched)
            self._evict(then_evict or {})
            raise
        self._committed(recordings)
        self.stats["batches"] += 1
        self.stats["commands"] += len(job.batch)
        _settle_all(job.outcomes)
        return True

    def _replay_one_by_one(self, batch: list[_Item]) -> None:
        self.stats["replays"] += 1
        self._absent = set()  # a replay trusts nothing but the store
        for item in batch:
            for _attempt in range(self.max_retries):
                uow = UnitOfWork(self)
                try:
                    value = item.command(uow, *item.args)
                    changed = uow.changed()
                    if changed:
                        self._committed(self.app.save(*changed.values()))
                except IntegrityError:
                    self._evict(uow.seen)
                    self._forget_changes_by_others()
                    continue
                except Exception as exc:
                    self._evict(uow.changed())
                    if not isinstance(exc, DomainError):
                        self._evict(uow.seen)
                    _settle(item, None, exc)
                    break
                _settle(item, value, None)
                break
            else:
                _settle(item, None, WriterUnavailable("too many concurrent changes; retry"))

    def _committed(self, recordings: Any) -> None:
        ids = sorted(r.notification.id for r in recordings)
        if ids and ids[0] == self._seen_up_to + 1 and ids[-1] - ids[0] == len(ids) - 1:
            self._seen_up_to = ids[-1]  # nobody else wrote in between: no need to read it back
        if recordings and self.on_commit:
            self.on_commit()

    # -- the cache -----------------------------------------------------------------------------
    def _look_before(self, batch: list[_Item]) -> None:
        """One look at the store before deciding a batch: which cached aggregates others have
        changed since, and which of the ids the batch will look up have no events yet."""
        wanted = {i for item in batch for i in item.probe if i not in self._cache}
        newest, found = newest_and_existing(self.app.recorder, wanted)
        self._absent = wanted - found if found is not None else set()
        self._forget_changes_by_others(newest)

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        aggregate = self._cache.get(aggregate_id)
        if aggregate is not None:
            self._cache.move_to_end(aggregate_id)
            return aggregate
        if aggregate_id in self._absent:
            return None
        try:
            aggregate = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self._cache_put(aggregate)
        return aggregate

    def _cache_put(self, aggregate: Aggregate) -> None:
        self._cache[aggregate.id] = aggregate
        self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self._cache_size:
            oldest_id, oldest = next(iter(self._cache.items()))
            if oldest.pending_events:  # still part of an uncommitted batch
                self._cache.move_to_end(oldest_id)
                break
            self._cache.popitem(last=False)

    def _evict(self, aggregates: dict[UUID, Aggregate]) -> None:
        for aggregate_id in aggregates:
            self._cache.pop(aggregate_id, None)

    def _forget_changes_by_others(self, newest: int | None = None) -> None:
        """Drop cached aggregates that another process has moved past our cached version."""
        recorder = self.app.recorder
        if newest is None:
            newest = recorder.max_notification_id() or 0
        while self._seen_up_to < newest:
            notes = recorder.select_notifications(
                self._seen_up_to, limit=1000, stop=newest, inclusive_of_start=False
            )
            if not notes:
                break
            for note in notes:
                cached = self._cache.get(note.originator_id)  # type: ignore[arg-type]
                if cached is not None and cached.version < note.originator_version:
                    del self._cache[note.originator_id]  # type: ignore[arg-type]
            self._seen_up_to = notes[-1].id


def _settle(item: _Item, value: Any, exc: BaseException | None) -> None:
    _settle_all([(item, value, exc)])


def _settle_all(outcomes: Iterable[tuple[_Item, Any, BaseException | None]]) -> None:
    """Answer commands: a thread's through its future, an event loop's callers all in one call
    on that loop. A future per command woke the loop once per claim (two callbacks each, to
    copy the answer across), a few percent of a busy API process's event loop in a sale."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any, Any]]] = {}
    for item, value, exc in outcomes:
        if isinstance(exc, DomainError):
            # A refusal's traceback runs through the frame that decided the batch, whose locals
            # hold every outcome of the batch, this exception included: a reference cycle per
            # refusal, left to the collector. In a flash sale that is thousands a second, and
            # young collections of 16-30 thousand objects that stall the event loop for 25-65
            # ms. A refusal needs no traceback (it becomes a 4xx answer).
            exc = exc.with_traceback(None)
        if item.waiter is not None:
            by_loop.setdefault(item.waiter.get_loop(), []).append((item.waiter, value, exc))
        elif not item.future.done():
            if exc is not None:
                item.future.set_exception(exc)
            else:
                item.future.set_result(value)
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # its loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_answer, answers)


def _answer(answers: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for waiter, value, exc in answers:
        if waiter.done():  # cancelled, or answered already (a batch failing late)
            continue
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(value)
