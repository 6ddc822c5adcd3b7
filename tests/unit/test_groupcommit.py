"""GroupCommitWriter: commands queue for one writer thread and commit together, correctly.

To make batching deterministic a test holds the writer thread inside a "gate" command until the
commands it wants in one batch are all queued behind it, then opens the gate.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError

from commerce.application import Commerce
from commerce.config import CommerceConfig
from commerce.domain.errors import InvalidInput, OutOfStock
from commerce.domain.inventory import Stock
from commerce.platform.groupcommit import GroupCommitWriter, WriterUnavailable
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.idempotency import Answer, Idempotency, once

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
CFG = CommerceConfig(secret_key=b"k", clock=lambda: T0)


# -- commands ------------------------------------------------------------------------------------


def open_stock(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID, quantity: int) -> None:
    stock = uow.add(
        Stock(id=stock_id, merchant_id=uuid4(), product_id=uuid4(), warehouse_id=uuid4(), sku="S")
    )
    stock.receive(quantity)


def reserve_one(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID, rid: UUID) -> UUID:
    stock = uow.get(stock_id, Stock)
    now = cfg.clock()
    stock.reserve(rid, 1, now + TTL, now)
    return rid


def receive(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID, quantity: int) -> int:
    stock = uow.get(stock_id, Stock)
    stock.receive(quantity)
    return stock.on_hand


def on_hand(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID) -> tuple[int, int]:
    stock = uow.get(stock_id, Stock)
    return stock.on_hand, stock.reserved(cfg.clock())


def reserve_then_refuse(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID) -> None:
    reserve_one(uow, cfg, stock_id, uuid4())
    raise InvalidInput("changed its mind half-way", field="x")


def receive_then_crash(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID) -> None:
    uow.get(stock_id, Stock).receive(100)
    raise RuntimeError("bug after mutating")


def create_then_crash(uow: UnitOfWork, cfg: CommerceConfig, stock_id: UUID) -> None:
    open_stock(uow, cfg, stock_id, 5)
    raise RuntimeError("bug after creating")


# -- helpers -------------------------------------------------------------------------------------


def popo_app() -> Commerce:
    return Commerce(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def sqlite_app(path: Path) -> Commerce:
    return Commerce(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    )


def outcome(future: Future) -> Any:
    """The value a caller got, or the exception it got instead."""
    try:
        return future.result(timeout=10)
    except Exception as exc:
        return exc


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def in_one_batch(writer: GroupCommitWriter, calls: list[tuple[Callable, tuple]]) -> list[Any]:
    """Submit every call from its own thread while the writer is held; all queue, then go."""
    entered, opened = threading.Event(), threading.Event()

    def gate(uow: UnitOfWork, cfg: CommerceConfig) -> None:
        entered.set()
        assert opened.wait(10)

    with ThreadPoolExecutor(max_workers=len(calls) + 1) as pool:
        held = pool.submit(writer.execute, gate, CFG)
        assert entered.wait(5)
        futures = [pool.submit(writer.execute, command, CFG, *args) for command, args in calls]
        eventually(lambda: writer._queue.qsize() == len(calls))
        assert not any(f.done() for f in futures)  # nobody is answered before the commit
        opened.set()
        held.result(timeout=10)
        return [outcome(f) for f in futures]


@contextmanager
def collector_off() -> Iterator[list[Any]]:
    """The cycle collector off for the block; the list gets what it would have had to free."""
    found: list[Any] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage, not freed
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def stored(app: Commerce, stock_id: UUID) -> Stock:
    return app.repository.get(stock_id)


@pytest.fixture
def app() -> Commerce:
    return popo_app()


@pytest.fixture
def writer(app: Commerce) -> Iterator[GroupCommitWriter]:
    writer = GroupCommitWriter(app).start()
    yield writer
    writer.stop()


def stock_of(writer: GroupCommitWriter, quantity: int) -> UUID:
    stock_id = uuid4()
    writer.execute(open_stock, CFG, stock_id, quantity)
    return stock_id


def stats_delta(writer: GroupCommitWriter, before: dict[str, int]) -> dict[str, int]:
    return {k: writer.stats[k] - before[k] for k in before}


# -- batching ------------------------------------------------------------------------------------


def test_commands_queued_behind_a_busy_writer_commit_in_one_batch_and_each_gets_its_answer(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = stock_of(writer, 50)
    before = dict(writer.stats)
    rids = [uuid4() for _ in range(20)]

    results = in_one_batch(writer, [(reserve_one, (stock_id, rid)) for rid in rids])

    assert results == rids  # every caller got its own answer
    assert stats_delta(writer, before) == {"batches": 2, "commands": 21, "replays": 0}
    stock = stored(app, stock_id)
    assert set(stock.reservations) == set(rids)
    assert stock.version == 2 + 20


def test_threads_hammering_one_writer_each_get_their_own_result(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = stock_of(writer, 1)
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = {n: pool.submit(writer.execute, receive, CFG, stock_id, n) for n in range(1, 81)}
    results = {n: f.result() for n, f in futures.items()}
    # each caller saw on-hand just after its own receipt; no two saw the same moment
    assert len(set(results.values())) == 80
    assert max(results.values()) == stored(app, stock_id).on_hand == 1 + sum(range(1, 81))
    assert writer.stats["commands"] == 81


def test_commands_in_one_batch_see_each_others_effects(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = stock_of(writer, 10)
    before = dict(writer.stats)

    results = in_one_batch(writer, [(reserve_one, (stock_id, uuid4())) for _ in range(20)])

    won = [r for r in results if isinstance(r, UUID)]
    refused = [r for r in results if isinstance(r, OutOfStock)]
    assert (len(won), len(refused)) == (10, 10)
    assert stats_delta(writer, before) == {"batches": 2, "commands": 21, "replays": 0}
    stock = stored(app, stock_id)
    assert set(stock.reservations) == set(won)
    assert stock.available(T0) == 0


def test_a_refused_command_does_not_disturb_the_others_in_its_batch(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id, missing = stock_of(writer, 10), uuid4()
    before = dict(writer.stats)
    first, last = uuid4(), uuid4()

    results = in_one_batch(
        writer,
        [
            (reserve_one, (stock_id, first)),
            (receive, (stock_id, 0)),  # refused before changing anything
            (reserve_one, (stock_id, last)),
        ],
    )

    assert results[0] == first and results[2] == last
    assert isinstance(results[1], InvalidInput) and results[1].field == "quantity"
    assert stats_delta(writer, before)["replays"] == 0
    assert set(stored(app, stock_id).reservations) == {first, last}
    with pytest.raises(AttributeError):  # a non-domain error reaches only its own caller
        writer.execute(reserve_one, CFG, missing, uuid4())
    assert writer.execute(on_hand, CFG, stock_id) == (10, 2)


def test_refusals_are_freed_without_the_cycle_collector(writer: GroupCommitWriter) -> None:
    """A flash sale refuses thousands of claims a second in the writer. Refusals caught in
    reference cycles piled up as young garbage whose collections stalled the API's event loop
    for 25-65 ms; each must be freed as soon as its caller drops it."""
    stock_id = stock_of(writer, 1)
    writer.execute(reserve_one, CFG, stock_id, uuid4())  # sold out from here on
    with collector_off() as cyclic:
        with ThreadPoolExecutor(max_workers=4) as pool:
            calls = [
                pool.submit(writer.execute, reserve_one, CFG, stock_id, uuid4()) for _ in range(20)
            ]
            refusals = [call.exception(timeout=10) for call in calls]
        assert all(isinstance(r, OutOfStock) for r in refusals)
        del calls, refusals
        writer.execute(on_hand, CFG, stock_id)  # the writer thread moves on to another batch
    assert [o for o in cyclic if isinstance(o, OutOfStock)] == []


def test_a_command_refused_after_changing_state_leaves_no_trace(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = stock_of(writer, 10)
    before = dict(writer.stats)
    first, last = uuid4(), uuid4()

    results = in_one_batch(
        writer,
        [
            (reserve_one, (stock_id, first)),
            (reserve_then_refuse, (stock_id,)),
            (reserve_one, (stock_id, last)),
        ],
    )

    assert results[0] == first and results[2] == last
    assert isinstance(results[1], InvalidInput)
    assert stats_delta(writer, before)["replays"] == 1  # replayed one by one on fresh state
    assert set(stored(app, stock_id).reservations) == {first, last}
    assert writer.execute(on_hand, CFG, stock_id) == (10, 2)


def test_a_command_crashing_after_it_changed_state_leaves_no_partial_write(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = stock_of(writer, 10)
    written = app.recorder.max_notification_id()
    first, last = uuid4(), uuid4()

    results = in_one_batch(
        writer,
        [
            (reserve_one, (stock_id, first)),
            (receive_then_crash, (stock_id,)),
            (reserve_one, (stock_id, last)),
        ],
    )

    assert results[0] == first and results[2] == last
    assert isinstance(results[1], RuntimeError)
    assert app.recorder.max_notification_id() == written + 2  # the two reservations only
    assert stored(app, stock_id).on_hand == 10
    assert writer.execute(on_hand, CFG, stock_id) == (10, 2)  # nor in the writer's cache

    with pytest.raises(RuntimeError):  # alone in its batch, too
        writer.execute(receive_then_crash, CFG, stock_id)
    assert writer.execute(on_hand, CFG, stock_id) == (10, 2)
    assert app.recorder.max_notification_id() == written + 2


def test_an_aggregate_created_by_a_crashing_command_does_not_exist(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = uuid4()
    with pytest.raises(RuntimeError):
        writer.execute(create_then_crash, CFG, stock_id)
    with pytest.raises(AggregateNotFoundError):
        app.repository.get(stock_id)
    with pytest.raises(AttributeError):  # the writer's cache does not have it either
        writer.execute(on_hand, CFG, stock_id)
    writer.execute(open_stock, CFG, stock_id, 3)  # and the id is still free
    assert writer.execute(on_hand, CFG, stock_id) == (3, 0)


def test_the_same_idempotent_request_twice_in_one_batch_creates_one_thing(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    idem = Idempotency(principal="merchant:m", key="k-1", fingerprint="fp")

    def open_once(uow: UnitOfWork, cfg: CommerceConfig) -> Answer:
        def create() -> Answer:
            stock_id = idem.resource_id("stock")
            open_stock(uow, cfg, stock_id, 7)
            return Answer(201, {"id": str(stock_id)})

        return once(uow, idem, create)

    written = app.recorder.max_notification_id() or 0
    first, second = in_one_batch(writer, [(open_once, ()), (open_once, ())])

    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert first.body == second.body == {"id": str(idem.resource_id("stock"))}
    assert app.recorder.max_notification_id() == written + 3  # opened, received, recorded
    assert stored(app, idem.resource_id("stock")).on_hand == 7


# -- two writers over the same stored data -------------------------------------------------------


@dataclass
class TwoWriters:
    a: GroupCommitWriter
    b: GroupCommitWriter
    fresh: Callable[[], Commerce]  # a new view of the store, cached by no writer


@pytest.fixture(params=["one-popo-app", "two-apps-one-sqlite-file"])
def two_writers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TwoWriters]:
    if request.param == "one-popo-app":
        shared = popo_app()
        apps = [shared, shared]

        def fresh() -> Commerce:
            return shared

    else:
        db = tmp_path / "c.db"
        apps = [sqlite_app(db), sqlite_app(db)]

        def fresh() -> Commerce:
            view = sqlite_app(db)
            opened.append(view)
            return view

    opened: list[Commerce] = []
    writers = [GroupCommitWriter(app).start() for app in apps]
    yield TwoWriters(writers[0], writers[1], fresh)
    for writer in writers:
        writer.stop()
    for app in {id(a): a for a in apps + opened}.values():
        app.close()


@pytest.mark.parametrize(("units", "a_wins"), [(1, False), (2, True)])
def test_a_rival_write_inside_the_batch_window_is_detected_and_replayed(
    two_writers: TwoWriters, units: int, a_wins: bool
) -> None:
    a, b = two_writers.a, two_writers.b
    stock_id = stock_of(a, units)
    rival_go, rival_done = threading.Event(), threading.Event()
    versions_seen: list[int] = []

    def reserve_after_rival(uow: UnitOfWork, cfg: CommerceConfig, rid: UUID) -> UUID:
        stock = uow.get(stock_id, Stock)
        versions_seen.append(stock.version)
        if len(versions_seen) == 1:  # first run: let the rival commit under our feet
            rival_go.set()
            assert rival_done.wait(10)
        return reserve_one(uow, cfg, stock_id, rid)

    with ThreadPoolExecutor(max_workers=1) as pool:
        mine = pool.submit(a.execute, reserve_after_rival, CFG, uuid4())
        assert rival_go.wait(5)
        rival = b.execute(reserve_one, CFG, stock_id, uuid4())
        rival_done.set()
        result = outcome(mine)

    assert versions_seen == [2, 3]  # ran again on the state the rival left
    assert a.stats["replays"] == 1
    stock = stored(two_writers.fresh(), stock_id)
    if a_wins:
        assert isinstance(result, UUID)
        assert set(stock.reservations) == {rival, result}
    else:
        assert isinstance(result, OutOfStock)
        assert set(stock.reservations) == {rival}
    assert stock.available(T0) == 0


def test_a_rival_write_between_batches_is_noticed_before_the_next_batch(
    two_writers: TwoWriters,
) -> None:
    a, b = two_writers.a, two_writers.b
    stock_id = stock_of(a, 2)
    assert a.execute(on_hand, CFG, stock_id) == (2, 0)  # cached in a
    b.execute(reserve_one, CFG, stock_id, uuid4())
    b.execute(receive, CFG, stock_id, 3)

    assert a.execute(on_hand, CFG, stock_id) == (5, 1)
    a.execute(reserve_one, CFG, stock_id, uuid4())
    assert a.stats["replays"] == 0  # no conflict: a dropped its stale copy first
    assert stored(two_writers.fresh(), stock_id).reserved(T0) == 2


@pytest.mark.parametrize(("units", "attempts"), [(25, 60), (60, 40)])
def test_two_writers_hammered_from_threads_never_oversell(
    two_writers: TwoWriters, units: int, attempts: int
) -> None:
    a, b = two_writers.a, two_writers.b
    stock_id = stock_of(a, units)

    def attempt(writer: GroupCommitWriter) -> Any:
        """As a client does with the API's 503: a command that lost to the rival writer too
        many times in a row (WriterUnavailable) is sent again, with the same reservation id."""
        reservation = uuid4()
        for _ in range(20):
            try:
                return writer.execute(reserve_one, CFG, stock_id, reservation)
            except WriterUnavailable:
                continue
        return writer.execute(reserve_one, CFG, stock_id, reservation)

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(attempt, (a, b)[n % 2]) for n in range(attempts)]
    results = [outcome(f) for f in futures]

    won = [r for r in results if isinstance(r, UUID)]
    refused = [r for r in results if isinstance(r, OutOfStock)]
    assert len(won) == min(units, attempts)
    assert len(won) + len(refused) == attempts, [r for r in results if r not in won + refused]
    stock = stored(two_writers.fresh(), stock_id)
    assert set(stock.reservations) == set(won)
    assert stock.reserved(T0) == len(won) <= stock.on_hand == units
    for writer in (a, b):  # and neither writer's cache believes otherwise
        assert writer.execute(on_hand, CFG, stock_id) == (units, len(won))


# -- stopping ------------------------------------------------------------------------------------


def test_commands_queued_when_the_writer_stops_are_still_committed(
    app: Commerce, writer: GroupCommitWriter
) -> None:
    stock_id = stock_of(writer, 10)
    entered, opened = threading.Event(), threading.Event()

    def gate(uow: UnitOfWork, cfg: CommerceConfig) -> None:
        entered.set()
        assert opened.wait(10)

    rids = [uuid4() for _ in range(5)]
    with ThreadPoolExecutor(max_workers=len(rids) + 2) as pool:
        pool.submit(writer.execute, gate, CFG)
        assert entered.wait(5)
        futures = [pool.submit(writer.execute, reserve_one, CFG, stock_id, r) for r in rids]
        eventually(lambda: writer._queue.qsize() == len(rids))
        stopping = pool.submit(writer.stop)
        eventually(lambda: writer._stopping)
        opened.set()
        stopping.result(timeout=10)
        assert [outcome(f) for f in futures] == rids

    assert set(stored(app, stock_id).reservations) == set(rids)
    with pytest.raises(WriterUnavailable):
        writer.execute(on_hand, CFG, stock_id)


def test_a_command_submitted_while_the_writer_stops_is_answered(app: Commerce) -> None:
    writer = GroupCommitWriter(app).start()
    queue_ = writer._queue

    class Overtaken:
        """The caller passed the `_stopping` check; stop() runs to its end before the put
        (unless the writer makes stop() wait for submissions already under way)."""

        def put(self, item: Any) -> None:
            if item is not None:
                stopper = threading.Thread(target=writer.stop)
                stopper.start()
                stopper.join(timeout=0.5)
            queue_.put(item)

        def __getattr__(self, name: str) -> Any:
            return getattr(queue_, name)

    def noop(uow: UnitOfWork, cfg: CommerceConfig) -> str:
        return "ran"

    writer._queue = Overtaken()  # type: ignore[assignment]
    future = writer._enqueue(noop, (CFG,))
    try:
        answer = future.result(timeout=2)  # hangs forever without the timeout
    except WriterUnavailable:
        answer = "refused"
    assert answer in ("ran", "refused")
