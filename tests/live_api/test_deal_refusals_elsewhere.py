"""A process that does not own a sold-out flash deal refuses its claims itself, worded as the
owner would, without a trip to the owner; a retried claim still reaches the owner; and once the
room hears units came back (over the PostgreSQL backplane, from the owner's process) the claims
go to the owner again and can win."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from commerce import credentials
from commerce.domain import errors
from livestream.engine.ownership import AdvisoryOwnership
from livestream.engine.router import DealEngine
from livestream.room import RoomHub
from livestream.room.pg_backplane import PgBackplane
from tests.integration.conftest import ADDRESS
from tests.integration.test_concurrency import resident_id
from tests.live_api.test_deal_forwarding import (
    engine_beside,
    migrated_with_server,
    stopped_at_the_end,
)
from tests.live_api.test_deal_oversell import seed, wait_until_open, wait_until_owned

pytestmark = pytest.mark.postgres


def claim_over_http(url: str, deal_id: str, token: str, n: int, quantity: int) -> dict:
    body = {
        "identity": {"name": "买家", "resident_id": resident_id(n)},
        "address": ADDRESS,
        "quantity": quantity,
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"elsewhere-{n}"}
    r = httpx.post(f"{url}/live/deals/{deal_id}/claims", json=body, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def buyer_of(token: str) -> UUID:
    parsed = credentials.parse(token)
    assert parsed is not None
    return parsed[1]


async def refused(engine: DealEngine, deal_id: UUID, buyer_id: UUID, claim_id: UUID) -> str:
    """How this process refuses the claim on its own ("" if it would ask the owner)."""
    try:
        engine.refuse_fast(deal_id, buyer_id, claim_id, 1)
    except errors.DomainError as exc:
        return exc.detail
    return ""


async def until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (seen := await check()):
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.05)
    return seen


def test_a_process_that_does_not_own_a_sold_out_deal_refuses_its_claims_itself(
    postgres_url: str, tmp_path: Path
) -> None:
    settings, owner = migrated_with_server(postgres_url, tmp_path)
    ownership = AdvisoryOwnership(postgres_url, "http://127.0.0.1:9")  # never owns: the server does
    with engine_beside(settings, ownership) as engine, stopped_at_the_end(owner):
        owner.wait_ready()
        deal, tokens = seed(owner.url, 4, payment_window=60)  # per-buyer limit 2
        deal_id, buyers = UUID(deal["id"]), [buyer_of(t) for t in tokens]
        wait_until_owned(postgres_url, deal["id"])
        wait_until_open(deal)
        # two buyers take all four units through the owner itself
        first = claim_over_http(owner.url, deal["id"], tokens[0], 0, quantity=2)
        claim_over_http(owner.url, deal["id"], tokens[1], 1, quantity=2)

        async def scenario() -> dict[str, str]:
            backplane = PgBackplane(postgres_url)
            hub = RoomHub(lambda room_id: asyncio.sleep(0, {}), backplane=backplane)
            hub.listen_units(engine.units_seen)
            await backplane.start()
            seen: dict[str, str] = {}
            try:
                with pytest.raises(errors.OutOfStock):  # forwarded: the owner says so
                    await engine.run(
                        deal_id, "claim", claim_id=uuid4(), buyer_id=buyers[2], quantity=1
                    )

                async def knows() -> str:
                    return await refused(engine, deal_id, buyers[3], uuid4())

                await until(knows)  # once it has read the deal's claims
                os.kill(owner.process.pid, signal.SIGSTOP)  # nothing reaches the owner now
                try:
                    seen["new buyer"] = await refused(engine, deal_id, buyers[3], uuid4())
                    seen["winner, new key"] = await refused(engine, deal_id, buyers[0], uuid4())
                    retry = UUID(first["id"])
                    seen["winner, retried key"] = await refused(engine, deal_id, buyers[0], retry)
                finally:
                    os.kill(owner.process.pid, signal.SIGCONT)
                cancel = httpx.post(
                    f"{owner.url}/orders/{first['order_id']}/cancel",
                    headers={"Authorization": f"Bearer {tokens[0]}"},
                    json={"reason": "changed my mind"},
                    timeout=30,
                )
                assert cancel.status_code == 200, cancel.text

                async def asks_again() -> bool:
                    return await refused(engine, deal_id, buyers[3], uuid4()) == ""

                await until(asks_again)  # the room heard the units come back
                won = await engine.run(
                    deal_id, "claim", claim_id=uuid4(), buyer_id=buyers[3], quantity=2
                )
                seen["after units came back"] = "won" if won["new"] else "not new"
            finally:
                await hub.stop()
                await engine.aclose()
            return seen

        seen = asyncio.run(scenario())
    assert seen["new buyer"] == "FLASH-1: 1 requested, 0 left"
    assert seen["winner, new key"] == "at most 2 per buyer; 2 already claimed"
    assert seen["winner, retried key"] == ""  # goes to the owner, to be answered as first
    assert seen["after units came back"] == "won"
