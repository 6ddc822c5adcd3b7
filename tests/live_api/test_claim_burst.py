"""A sale's opening burst in one process, on both stores: every claim is answered, won or sold
out, and none is shed while the process keeps up (livestream.api.admission)."""

from __future__ import annotations

from collections import Counter

import anyio
import httpx
from litestar.testing import TestClient

from tests.integration.conftest import ADDRESS, VALID_ID, Shop, sign_up
from tests.live_api.conftest import Clock
from tests.live_api.test_deals_http import live_session, open_deal

BUYERS, KEYS_EACH, UNITS = 40, 8, 100  # 320 claims at once for 100 units


def test_a_burst_of_hundreds_of_claims_at_once_is_answered_none_shed(
    client: TestClient, clock: Clock
) -> None:
    """320 claims arrive together, more than the fixed cap of 256 in flight that used to shed
    the rest with 503 although the process answered each within milliseconds."""
    shop = Shop(client, bonded=UNITS + 5, direct=0)
    deal = open_deal(
        client, shop, live_session(client, shop), quantity=UNITS, per_buyer_limit=KEYS_EACH
    )
    buyers = [sign_up(client, f"burst{i}") for i in range(BUYERS)]
    clock.advance(11)
    body = {"identity": {"name": "王小红", "resident_id": VALID_ID}, "address": ADDRESS}
    url = f"/live/deals/{deal['id']}/claims"
    answers: list[int] = []

    async def burst() -> None:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

            async def one(buyer: dict[str, str], key: str) -> None:
                headers = buyer | {"Idempotency-Key": key}
                answers.append((await http.post(url, headers=headers, json=body)).status_code)

            async with anyio.create_task_group() as tasks:
                for n, buyer in enumerate(buyers):
                    for k in range(KEYS_EACH):
                        tasks.start_soon(one, buyer, f"burst-{n}-{k}")

    client.blocking_portal.call(burst)  # on the app's own event loop, as a server runs them
    assert Counter(answers) == {201: UNITS, 409: BUYERS * KEYS_EACH - UNITS}
    seen = client.get(f"/live/deals/{deal['id']}").json()
    assert (seen["units_left"], seen["phase"]) == (0, "open")
