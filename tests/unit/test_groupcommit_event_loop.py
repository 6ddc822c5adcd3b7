"""GroupCommitWriter's event-loop callers: each gets its own answer, a batch's in one loop call.

The API's claims await the writer from the event loop. A batch of hundreds of claims used to
wake the loop once per claim (two callbacks each); now the batch's answers arrive together.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from commerce.domain.errors import OutOfStock
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.platform.unit_of_work import UnitOfWork
from tests.unit.test_groupcommit import (
    CFG,
    collector_off,
    on_hand,
    popo_app,
    reserve_one,
    stock_of,
    stored,
)


@pytest.fixture
def writer() -> Iterator[GroupCommitWriter]:
    started = GroupCommitWriter(popo_app()).start()
    yield started
    started.stop()


class Gate:
    """A command that holds the writer thread until opened, so that what follows queues."""

    def __init__(self) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()

    def __call__(self, uow: UnitOfWork, cfg: object) -> None:
        self.entered.set()
        assert self.opened.wait(10)


async def held(writer: GroupCommitWriter) -> tuple[Gate, asyncio.Future]:
    """The writer held inside a gate command: what is submitted next queues behind it."""
    gate = Gate()
    holding = asyncio.ensure_future(writer.submit(gate, CFG))
    await asyncio.to_thread(gate.entered.wait, 5)
    return gate, holding


async def queued_behind(writer: GroupCommitWriter, count: int) -> None:
    while writer._queue.qsize() < count:
        await asyncio.sleep(0.001)


async def released(gate: Gate, holding: asyncio.Future) -> None:
    gate.opened.set()
    await holding


def counting_wakeups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many answers each cross-thread call on this loop carried."""
    loop = asyncio.get_running_loop()
    calls: list[int] = []
    original = loop.call_soon_threadsafe

    def counted(callback, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[0]) if args and isinstance(args[0], list) else 1)
        return original(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    return calls


async def test_claims_awaiting_one_batch_each_get_their_own_answer_in_one_wakeup(
    writer: GroupCommitWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock_id = stock_of(writer, 10)
    wakeups = counting_wakeups(monkeypatch)
    gate, holding = await held(writer)
    rids = [uuid4() for _ in range(20)]
    claims = [asyncio.ensure_future(writer.submit(reserve_one, CFG, stock_id, r)) for r in rids]
    await queued_behind(writer, len(rids))
    assert not any(c.done() for c in claims)  # nobody is answered before the commit

    await released(gate, holding)
    answers = await asyncio.gather(*claims, return_exceptions=True)

    won = [a for a in answers if isinstance(a, UUID)]
    assert won == rids[:10]  # each caller its own reservation, in the order they queued
    assert all(isinstance(a, OutOfStock) for a in answers[10:])
    assert set(stored(writer.app, stock_id).reservations) == set(won)
    assert wakeups[-1] == 20  # the batch's twenty answers crossed to the loop in one call


async def test_a_caller_that_gave_up_does_not_disturb_the_others_in_its_batch(
    writer: GroupCommitWriter,
) -> None:
    stock_id = stock_of(writer, 10)
    gate, holding = await held(writer)
    impatient_id, patient_id = uuid4(), uuid4()
    impatient = asyncio.ensure_future(writer.submit(reserve_one, CFG, stock_id, impatient_id))
    patient = asyncio.ensure_future(writer.submit(reserve_one, CFG, stock_id, patient_id))
    await queued_behind(writer, 2)
    impatient.cancel()

    await released(gate, holding)

    assert await patient == patient_id
    assert impatient.cancelled()
    # the command had been queued: it ran, as a claim whose buyer hung up still counts
    assert set(stored(writer.app, stock_id).reservations) == {impatient_id, patient_id}


async def test_a_thread_and_the_event_loop_share_a_batch(writer: GroupCommitWriter) -> None:
    stock_id = stock_of(writer, 10)
    gate, holding = await held(writer)
    from_loop = asyncio.ensure_future(writer.submit(reserve_one, CFG, stock_id, uuid4()))
    from_thread = asyncio.ensure_future(
        asyncio.to_thread(writer.execute, reserve_one, CFG, stock_id, uuid4())
    )
    await queued_behind(writer, 2)

    await released(gate, holding)

    assert {await from_loop, await from_thread} == set(stored(writer.app, stock_id).reservations)


async def test_refusals_awaited_on_the_event_loop_are_freed_without_the_cycle_collector(
    writer: GroupCommitWriter,
) -> None:
    """As for threads (test_groupcommit): a refusal whose frames and future hold each other
    waits for the collector, and a sale's thousands of them made young collections stall the
    event loop (23 ms for 511 refused claims at one sale's start)."""
    stock_id = stock_of(writer, 1)
    await writer.submit(reserve_one, CFG, stock_id, uuid4())  # sold out from here on
    with collector_off() as cyclic:
        for _ in range(20):
            with pytest.raises(OutOfStock):
                await writer.submit(reserve_one, CFG, stock_id, uuid4())
        await writer.submit(on_hand, CFG, stock_id)  # the writer moves on to another batch
    assert [o for o in cyclic if isinstance(o, OutOfStock)] == []
