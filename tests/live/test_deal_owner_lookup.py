"""A sale's first claims at a process: one look for the deal's owner, one take-over (no database).

When a deal opens, hundreds of claims reach each API process before any is answered. Each used
to ask the database on its own (take the deal's lock? who owns it?) on the process's one
ownership connection, in turn: the sale's first claims queued there for hundreds of milliseconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from uuid import UUID, uuid4

from livestream.engine.router import DealEngine

OWNER_URL = "http://127.0.0.1:9"


class CountingOwnership:
    """Ownership whose answers take a database round trip's time, and are counted."""

    def __init__(self, *, free: bool, url: str | None = OWNER_URL) -> None:
        self.free, self.url = free, url
        self.acquired: set[UUID] = set()
        self.asked = {"acquire": 0, "owner_url": 0}
        self._lock = threading.Lock()

    def _ask(self, what: str) -> None:
        with self._lock:
            self.asked[what] += 1
        time.sleep(0.002)

    def acquire(self, deal_id: UUID) -> bool:
        self._ask("acquire")
        if self.free:
            self.acquired.add(deal_id)
        return self.free

    def owner_url(self, deal_id: UUID) -> str | None:
        self._ask("owner_url")
        return self.url

    def owned(self) -> set[UUID]:
        return set(self.acquired)

    def check(self) -> None:
        pass

    def release(self, deal_id: UUID) -> None:
        self.acquired.discard(deal_id)

    def close(self) -> None:
        pass


class RecordedClaimsWriter:
    """Answers `recorded_claims` (what a process reads when it takes a deal over), counted."""

    def __init__(self) -> None:
        self.reads = 0

    async def submit(self, command: object, deal_id: UUID) -> tuple[set, dict, None]:
        self.reads += 1
        await asyncio.sleep(0.01)
        return set(), {}, None


def engine_with(ownership: CountingOwnership) -> tuple[DealEngine, RecordedClaimsWriter]:
    writer = RecordedClaimsWriter()
    engine = DealEngine(writer, lambda: datetime.now(UTC), ownership, b"secret")  # type: ignore[arg-type]
    return engine, writer


async def test_a_sales_first_claims_share_one_look_for_another_processs_owner() -> None:
    ownership = CountingOwnership(free=False)
    engine, _ = engine_with(ownership)
    deal = uuid4()

    found = await asyncio.gather(*(engine.find_owner(deal) for _ in range(200)))

    assert set(found) == {OWNER_URL}
    assert ownership.asked == {"acquire": 1, "owner_url": 1}
    assert await engine.find_owner(uuid4()) == OWNER_URL  # another deal is another look
    assert ownership.asked == {"acquire": 2, "owner_url": 2}


async def test_a_deal_nobody_owns_is_taken_over_once_however_many_claims_arrive() -> None:
    ownership = CountingOwnership(free=True)
    engine, writer = engine_with(ownership)
    deal = uuid4()

    found = await asyncio.gather(*(engine.find_owner(deal) for _ in range(100)))
    taken = await asyncio.gather(*(engine.acquire(deal) for _ in range(100)))

    assert set(found) == {None} and all(taken)
    assert deal in ownership.owned()
    assert ownership.asked == {"acquire": 1, "owner_url": 0}
    assert writer.reads == 1  # the deal's recorded claims were read once, by the take-over


async def test_an_owner_nobody_could_name_is_looked_for_again_by_the_next_claim() -> None:
    ownership = CountingOwnership(free=False, url=None)
    engine, _ = engine_with(ownership)
    deal = uuid4()

    assert set(await asyncio.gather(*(engine.find_owner(deal) for _ in range(50)))) == {None}
    ownership.url = OWNER_URL
    assert await engine.find_owner(deal) == OWNER_URL
    assert ownership.asked == {"acquire": 2, "owner_url": 2}


async def test_one_claim_giving_up_does_not_cancel_the_look_the_others_wait_for() -> None:
    ownership = CountingOwnership(free=False)
    engine, _ = engine_with(ownership)
    deal = uuid4()

    impatient = asyncio.ensure_future(engine.find_owner(deal))
    patient = asyncio.ensure_future(engine.find_owner(deal))
    await asyncio.sleep(0)
    impatient.cancel()

    assert await patient == OWNER_URL
    assert impatient.cancelled()


async def test_the_rooms_sweep_learns_the_owner_once_even_when_it_cannot_reach_it() -> None:
    ownership = CountingOwnership(free=False)  # OWNER_URL: nothing listens there
    engine, _ = engine_with(ownership)
    deal = uuid4()

    await engine.meet_owner(deal)  # the owner is unreachable: no error, the claims will retry
    await engine.meet_owner(deal)  # the next sweep: remembered, not asked again
    assert ownership.asked == {"acquire": 1, "owner_url": 1}
    await engine.aclose()


async def test_an_owner_that_accepts_but_never_answers_does_not_hold_up_the_rooms_sweep() -> None:
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hung_up.wait()  # a stopped owner: the kernel accepts, nobody answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ownership = CountingOwnership(free=False, url=f"http://127.0.0.1:{port}")
    engine, _ = engine_with(ownership)
    deal = uuid4()
    try:
        started = time.monotonic()
        engine.meet_owner_soon(deal)
        engine.meet_owner_soon(deal)  # the next sweep, while the first is still waiting
        assert time.monotonic() - started < 0.05
        await asyncio.sleep(0.2)
        assert ownership.asked == {"acquire": 1, "owner_url": 1}  # one meeting, not two
    finally:
        await engine.aclose()  # gives up the meeting under way
        hung_up.set()
        server.close()
        await server.wait_closed()
