"""Claims' orders placed by `redcart worker claim-orders`, a process of its own (PostgreSQL),
while an API process owns the deal and answers the claims. The worker resumes from where the
placing stands, never takes the deal, and releases a refused order's claim through its owner.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from redcart.wiring import migrate
from tests.conftest import make_settings
from tests.integration.conftest import ADDRESS
from tests.integration.test_concurrency import resident_id
from tests.live_api.test_deal_oversell import owner_pid, seed, wait_until_open
from tests.servers import ApiServer, settings_env, start_worker

pytestmark = pytest.mark.postgres


def claim(c: httpx.Client, deal_id: str, token: str, n: int, quantity: int) -> dict:
    body = {
        "identity": {"name": "买家", "resident_id": resident_id(n)},
        "address": ADDRESS,
        "quantity": quantity,
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"w-{n}"}
    r = c.post(f"/live/deals/{deal_id}/claims", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def state(c: httpx.Client, claimed: dict, token: str) -> dict:
    url = f"/live/deals/{claimed['deal_id']}/claims/{claimed['id']}"
    r = c.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def settled(c: httpx.Client, claimed: dict, token: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while (seen := state(c, claimed, token))["state"] == "placing":
        assert time.monotonic() < deadline, "the worker never placed the claim's order"
        time.sleep(0.05)
    return seen


def heard(ws: ClientConnection, kind: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        for message in map(json.loads, str(frame).split("\n")):
            if message["type"] == kind:
                return message


def test_a_claim_orders_worker_places_orders_and_releases_refused_claims(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(postgres_url, tmp_path / "var")
    migrate(settings)
    env = settings_env(postgres_url, tmp_path / "var") | {"REDCART_CLAIM_ORDERS": "worker"}
    api = ApiServer(env, tmp_path / "api.log").wait_ready()
    worker = None
    try:
        # 3,000 CNY a unit: one unit is an order within the CBEC limits, two are not (5,000)
        deal, tokens = seed(api.url, 4, payment_window=60, price_fen=300_000)
        wait_until_open(deal)
        room = api.url.replace("http://", "ws://") + f"/live/{deal['session_id']}/ws"
        with (
            httpx.Client(base_url=api.url, timeout=30) as c,
            connect(f"{room}?token={tokens[0]}") as watching,
        ):
            heard(watching, "snapshot")
            first = claim(c, deal["id"], tokens[0], 0, quantity=1)
            time.sleep(1.0)  # no process places orders yet: the API leaves it to the worker
            assert state(c, first, tokens[0])["state"] == "placing"

            worker = start_worker(env, tmp_path / "worker.log", "claim-orders")
            placed = settled(c, first, tokens[0])
            assert placed["state"] == "placed" and placed["order"]["id"] == first["order_id"]
            assert placed["order"]["attribution"]["claim_id"] == first["id"]
            # told by the worker's process, over the PostgreSQL backplane, in the API's room
            told = heard(watching, "claim.placed")["data"]
            assert (told["claim_id"], told["order_id"]) == (first["id"], first["order_id"])

            refused = settled(c, claim(c, deal["id"], tokens[1], 1, quantity=2), tokens[1])
            assert refused["state"] == "refused", refused
            assert "single-order limit" in refused["reason"]
            assert c.get(f"/live/deals/{deal['id']}").json()["units_left"] == 3
        assert owner_pid(postgres_url, deal["id"]) == api.process.pid  # never the worker
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(10)
        api.stop()
