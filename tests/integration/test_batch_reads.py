"""Many aggregates read together (commerce.platform.batch_reads), on both stores: the same
aggregates one read at a time would give, and first-time tokens checked each against its own
owner when thousands arrive at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from litestar.testing import TestClient

from commerce.platform import batch_reads
from commerce.platform.batch_reads import BatchedReads, read_many
from commerce.platform.eventstore import event_store_env
from redcart.app import create_app
from redcart.wiring import migrate
from tests.conftest import make_settings
from tests.integration.conftest import sign_up


class Basket(Aggregate):
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: list[str] = []

    @event("ItemAdded")
    def add(self, item: str) -> None:
        self.items.append(item)


class Baskets(Application):
    name = "BatchReadProbe"


@pytest.fixture
def app(store_url: str | None, tmp_path: Path) -> Iterator[Baskets]:
    Baskets(env=event_store_env(store_url, tmp_path, Baskets.name, create_table=True)).close()
    app = Baskets(env=event_store_env(store_url, tmp_path, Baskets.name))
    yield app
    app.close()


def saved_baskets(app: Baskets, count: int) -> list[Basket]:
    baskets = []
    for n in range(count):
        basket = Basket(owner=f"buyer {n}")
        for item in range(n % 4):  # some with one event, some with several
            basket.add(f"item {item}")
        baskets.append(basket)
    app.save(*baskets)
    return baskets


def test_many_aggregates_read_at_once_are_what_one_read_each_gives(app: Baskets) -> None:
    baskets = saved_baskets(app, 30)
    missing = uuid4()
    found = read_many(app, [b.id for b in baskets] + [missing])
    assert missing not in found
    assert set(found) == {b.id for b in baskets}
    for basket in baskets:
        one = app.repository.get(basket.id)
        got = found[basket.id]
        assert (got.owner, got.items, got.version) == (one.owner, one.items, one.version)
        assert (got.owner, got.items) == (basket.owner, basket.items)


def test_reads_asked_for_at_once_share_one_query_and_each_gets_its_own(app: Baskets) -> None:
    baskets = saved_baskets(app, 40)
    reads = BatchedReads(app)

    async def ask() -> list:
        ids = [b.id for b in baskets] * 2 + [uuid4()]  # the same id twice, and one not there
        return await asyncio.gather(*(reads.get(i) for i in ids))

    answers = asyncio.run(ask())
    assert [a.owner for a in answers[:80]] == [b.owner for b in baskets] * 2
    assert answers[80] is None
    assert reads.queries == 1

    async def later() -> object:  # a read asked for afterwards is made afresh
        return await reads.get(baskets[3].id)

    assert asyncio.run(later()).items == baskets[3].items
    assert reads.queries == 2


def test_a_failed_read_fails_its_askers_and_the_next_read_works(
    app: Baskets, monkeypatch: pytest.MonkeyPatch
) -> None:
    basket = saved_baskets(app, 1)[0]
    reads = BatchedReads(app)
    calls = []

    def store_down_once(app: Baskets, ids: list) -> dict:
        calls.append(ids)
        if len(calls) == 1:
            raise ConnectionError("the store went away")
        return read_many(app, ids)

    monkeypatch.setattr(batch_reads, "read_many", store_down_once)

    async def scenario() -> None:
        results = await asyncio.gather(
            reads.get(basket.id), reads.get(uuid4()), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionError) for r in results)
        again = await reads.get(basket.id)
        assert again is not None and again.owner == basket.owner

    asyncio.run(scenario())
    assert len(calls) == 2


def test_first_time_tokens_at_once_are_each_checked_against_their_own_buyer(
    store_url: str | None, tmp_path: Path
) -> None:
    """A second API process (another app on the same store) meets 40 buyers for the first
    time at once, with a forged token for each beside the real one."""
    settings = make_settings(store_url, tmp_path / "var")
    migrate(settings)
    env = {"REDCART_PAYMENTS": "off"}
    with TestClient(app=create_app(settings, env=env)) as first:
        buyers = [sign_up(first, f"buyer {n}") for n in range(40)]
    forged = []
    for headers in buyers:
        token = headers["Authorization"].removeprefix("Bearer ")
        prefix, owner, secret = token.split("_", 2)
        forged.append({"Authorization": f"Bearer {prefix}_{owner}_{secret[::-1]}x"})
    with TestClient(app=create_app(settings, env=env)) as second:

        def status(headers: dict[str, str]) -> int:
            return second.get("/orders", headers=headers).status_code

        asked = [h for pair in zip(buyers, forged, strict=True) for h in pair]
        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(status, asked))
    assert statuses == [200, 401] * 40
