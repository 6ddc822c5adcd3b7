"""Flash-deal claims racing across real server processes on PostgreSQL: never oversold.

Buyers claim through two API processes at once; one of them owns the deal and the other
forwards to it. Then the owner is killed outright, and the survivor takes the deal over.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from uuid import UUID

import httpx
import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError

from commerce.domain.orders import Order
from livestream.domain.deals import FlashDeal
from redcart.serving import SERVERS
from redcart.settings import Settings
from redcart.wiring import commerce_app, livestream_app, migrate
from tests.conftest import make_settings
from tests.integration.conftest import ADDRESS, ADMIN
from tests.integration.test_concurrency import resident_id
from tests.servers import ApiServer, settings_env

pytestmark = pytest.mark.postgres

UNITS, LIMIT, BUYERS = 20, 2, 40


def seed(url: str, units: int, payment_window: int, price_fen: int = 990) -> tuple[dict, list[str]]:
    with httpx.Client(base_url=url, timeout=30) as c:
        merchant = c.post(
            "/admin/merchants",
            headers=ADMIN,
            json={"name": "Live", "home_country": "KR", "settlement_currency": "KRW"},
        ).json()
        key = {"Authorization": f"Bearer {merchant['api_key']}"}
        wh = c.post(
            "/warehouses",
            headers=key,
            json={"name": "Ningbo", "kind": "bonded", "country": "CN", "address": "Meishan"},
        ).json()
        product = c.post(
            "/products",
            headers=key,
            json={
                "sku": "FLASH-1",
                "title": "秒杀 cushion",
                "brand": "B",
                "origin_country": "KR",
                "hs_code": "3304990099",
                "category": "beauty",
                "list_price_minor": 1000,
                "weight_grams": 100,
            },
        ).json()
        r = c.post(
            f"/products/{product['id']}/stock/{wh['id']}/receipts",
            headers=key,
            json={"quantity": units + 5},
        )
        assert r.status_code == 201, r.text
        starts = "2030-01-01T00:00:00+00:00"
        sid = c.post("/live/sessions", headers=key, json={"title": "秒杀", "starts_at": starts})
        sid = sid.json()["id"]
        assert c.post(f"/live/sessions/{sid}/start", headers=key).status_code == 200
        deal = c.post(
            f"/live/sessions/{sid}/deals",
            headers=key,
            json={
                "sku": "FLASH-1",
                "warehouse_id": wh["id"],
                "price_fen": price_fen,
                "quantity": units,
                "per_buyer_limit": LIMIT,
                "countdown_seconds": 10,
                "duration_seconds": 300,
                "payment_window_seconds": payment_window,
            },
        )
        assert deal.status_code == 201, deal.text
        tokens = [
            c.post("/buyers", json={"display_name": f"b{i}"}).json()["token"] for i in range(BUYERS)
        ]
    return deal.json(), tokens


def claim(url: str, deal_id: str, token: str, n: int, key: str) -> int:
    body = {"identity": {"name": "买家", "resident_id": resident_id(n)}, "address": ADDRESS}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post(f"/live/deals/{deal_id}/claims", json=body, headers=headers)
    assert r.status_code in (201, 409), r.text
    return r.status_code


def race(urls: list[str], deal_id: str, tokens: list[str], round_: str) -> list[tuple[int, int]]:
    """Every buyer tries three claims of one unit (limit two), spread over the servers."""
    attempts = [(b, k) for b in range(len(tokens)) for k in range(3)]
    barrier = Barrier(len(attempts))

    def attempt(i: int) -> tuple[int, int]:
        buyer, k = attempts[i]
        barrier.wait()
        status = claim(urls[i % len(urls)], deal_id, tokens[buyer], buyer, f"{round_}-{k}")
        return buyer, status

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(attempt, range(len(attempts))))


def wait_until_open(deal: dict) -> None:
    from datetime import UTC, datetime

    opens = datetime.fromisoformat(deal["opens_at"])
    time.sleep(max(0.0, (opens - datetime.now(UTC)).total_seconds()) + 0.2)


def owner_pid(database_url: str, deal_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT pid FROM deal_owners WHERE deal_id = %s", (deal_id,))
        return row.fetchone()[0]


def wait_until_owned(database_url: str, deal_id: str, timeout: float = 10.0) -> int:
    """The owner's pid, once there is one: opening a deal leaves it unowned, and a server's
    sweep (every 0.5 s) or its first claim takes it."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT pid FROM deal_owners WHERE deal_id = %s", (deal_id,))
            found = row.fetchone()
            if found is not None:
                return found[0]
            assert time.monotonic() < deadline, f"nobody took deal {deal_id} in {timeout} s"
            time.sleep(0.05)


def test_claims_across_processes_never_oversell_and_survive_the_owner_dying(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(postgres_url, tmp_path / "var")
    migrate(settings)
    env = settings_env(postgres_url, tmp_path / "var") | {"REDCART_SETTLE_GRACE_SECONDS": "0"}
    # one process on each HTTP server, as a sale's API tier on granian beside a room tier on
    # uvicorn (redcart.serving): whichever takes the deal, the other forwards to it
    servers = [ApiServer(env, tmp_path / f"{name}.log", server=name) for name in SERVERS]
    try:
        for server in servers:
            server.wait_ready()
        deal, tokens = seed(servers[0].url, UNITS, payment_window=30)
        wait_until_open(deal)
        first = race([s.url for s in servers], deal["id"], tokens, "r1")
        won = Counter(buyer for buyer, status in first if status == 201)
        assert sum(won.values()) == UNITS  # demand is 120 units: every unit goes, none twice
        assert max(won.values()) <= LIMIT

        owner = owner_pid(postgres_url, deal["id"])
        (dead,) = [s for s in servers if owner in s.app_pids()]
        (survivor,) = [s for s in servers if s is not dead]
        os.kill(owner, signal.SIGKILL)
        dead.process.wait(10)  # on granian, its main process exits with its worker

        # Nobody pays: after the 30 s payment window every unit is back, and the survivor
        # (which never owned the deal) takes it over for the second round.
        time.sleep(31)
        second = race([survivor.url], deal["id"], tokens, "r2")
        again = Counter(buyer for buyer, status in second if status == 201)
        assert sum(again.values()) == UNITS
        assert max(again.values()) <= LIMIT
        assert owner_pid(postgres_url, deal["id"]) in survivor.app_pids()
        every_claim_gets_its_order(settings, UUID(deal["id"]), 2 * UNITS)
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.stop()

    live = livestream_app(settings, create_table=False)
    commerce = commerce_app(settings, create_table=False)
    try:
        stored = live.repository.get(UUID(deal["id"]))
        assert isinstance(stored, FlashDeal)
        assert len(stored.claimants) == 2 * UNITS  # one claim per 201, no more
        # Replay the deal claim by claim: when each claim was decided, the claims still holding
        # units (lapsed ones no longer count) never exceeded the quantity.
        events = [live.mapper.to_domain_event(e) for e in live.recorder.select_events(stored.id)]
        for event in events:
            if type(event).__name__ != "Claimed":
                continue
            then = live.repository.get(stored.id, version=event.originator_version)
            decided_at = event.pay_by - then.payment_window - then.settle_grace
            assert then.units_claimed(decided_at) <= UNITS
        orders = [commerce.repository.get(_order_id(claim_id)) for claim_id in stored.claimants]
        assert all(isinstance(o, Order) and o.drawn_from == stored.id for o in orders)
    finally:
        live.close()
        commerce.close()


def every_claim_gets_its_order(
    settings: Settings, deal_id: UUID, claims: int, timeout: float = 30
) -> None:
    """Orders are placed after the claims' answers, by whichever server holds the placing
    lease (the survivor, once the other died)."""
    live = livestream_app(settings, create_table=False)
    commerce = commerce_app(settings, create_table=False)
    deadline = time.monotonic() + timeout
    try:
        stored = live.repository.get(deal_id)
        assert len(stored.claimants) == claims
        for claim_id in stored.claimants:
            while True:
                try:
                    commerce.repository.get(_order_id(claim_id))
                    break
                except AggregateNotFoundError:
                    assert time.monotonic() < deadline, f"claim {claim_id} has no order"
                    time.sleep(0.1)
    finally:
        live.close()
        commerce.close()


def _order_id(claim_id: UUID) -> UUID:
    from commerce.domain import ids

    return ids.claim_order_id(claim_id)
