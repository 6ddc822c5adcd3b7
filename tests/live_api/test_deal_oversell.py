"""Flash-deal claims racing across real server processes on PostgreSQL: never oversold.

Buyers claim through two API processes at once; one of them owns the deal and the other
forwards to it. Some pay through the sandbox providers, at both processes. Then the owner is
killed outright, and the survivor takes the deal over.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from threading import Barrier
from uuid import UUID

import httpx
import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError

from commerce.domain import ids
from commerce.domain.inventory import Stock
from commerce.domain.orders import EXPIRED, Order
from livestream.domain.deals import FlashDeal
from redcart.serving import SERVERS
from redcart.settings import Settings
from redcart.wiring import commerce_app, livestream_app, migrate
from tests.conftest import _free_port, make_settings
from tests.integration.conftest import ADDRESS, ADMIN, bearer
from tests.integration.test_concurrency import resident_id
from tests.servers import ApiServer, SandboxGateways, settings_env

pytestmark = pytest.mark.postgres

UNITS, LIMIT, BUYERS = 20, 2, 40
PAID = 8  # of the first round's claims, paid at the two processes through both providers
PROVIDERS = ("alipay", "wechatpay")


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


def claim_answer(url: str, deal_id: str, token: str, n: int, key: str) -> httpx.Response:
    body = {"identity": {"name": "买家", "resident_id": resident_id(n)}, "address": ADDRESS}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post(f"/live/deals/{deal_id}/claims", json=body, headers=headers)
    assert r.status_code in (201, 409), r.text
    return r


def claim(url: str, deal_id: str, token: str, n: int, key: str) -> int:
    return claim_answer(url, deal_id, token, n, key).status_code


def race(
    urls: list[str], deal_id: str, tokens: list[str], round_: str
) -> list[tuple[int, int, dict]]:
    """Every buyer tries three claims of one unit (limit two), spread over the servers:
    (buyer, status, answer) for each."""
    attempts = [(b, k) for b in range(len(tokens)) for k in range(3)]
    barrier = Barrier(len(attempts))

    def attempt(i: int) -> tuple[int, int, dict]:
        buyer, k = attempts[i]
        barrier.wait()
        r = claim_answer(urls[i % len(urls)], deal_id, tokens[buyer], buyer, f"{round_}-{k}")
        return buyer, r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(attempt, range(len(attempts))))


def poll(c: httpx.Client, path: str, done: Callable[[dict], bool], timeout: float = 15) -> dict:
    """GET `path` until `done` says so (or the time is up): the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(path)
        assert r.status_code == 200, r.text
        if done(r.json()) or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)


def pay(url: str, token: str, claimed: dict, provider: str) -> None:
    """What a buyer does with a won claim: waits for its order, starts paying it at `url` and
    approves the payment on the provider's (sandbox) page. The provider then notifies the
    process the payment was started at (its REDCART_PUBLIC_URL), whose webhook records it."""
    with httpx.Client(base_url=url, timeout=30, headers=bearer(token)) as c:
        state = f"/live/deals/{claimed['deal_id']}/claims/{claimed['id']}"
        assert poll(c, state, lambda b: b["state"] != "placing")["state"] == "placed"
        r = c.post(f"/orders/{claimed['order_id']}/payments", json={"provider": provider})
        assert r.status_code == 201, r.text
        httpx.post(f"{r.json()['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        order = poll(c, f"/orders/{claimed['order_id']}", lambda o: o["status"] != "placed")
        assert order["status"] == "paid", order


def pay_a_share(
    servers: list[ApiServer], tokens: list[str], claims: list[tuple[int, int, dict]]
) -> dict[UUID, int]:
    """Buyers pay PAID of the claims they won, all at once, alternately at each process and
    with each provider; buyers who won twice first, so some pay for both. Claim id -> buyer."""
    won = [(buyer, answer) for buyer, status, answer in claims if status == 201]
    wins = Counter(buyer for buyer, _ in won)
    chosen = sorted(won, key=lambda w: (-wins[w[0]], w[0]))[:PAID]

    def one(i: int) -> None:
        buyer, answer = chosen[i]
        pay(servers[i % len(servers)].url, tokens[buyer], answer, PROVIDERS[i // 2 % 2])

    with ThreadPoolExecutor(max_workers=PAID) as pool:
        list(pool.map(one, range(PAID)))
    return {UUID(answer["id"]): buyer for buyer, answer in chosen}


def units_paid(url: str, deal_id: str, expected: int) -> int:
    """The deal's units_paid as a process answers it, once it is `expected` (the deal hears of
    payments in the background: livestream.engine.settlement) or 15 s have passed."""
    with httpx.Client(base_url=url, timeout=30) as c:
        deal = poll(c, f"/live/deals/{deal_id}", lambda d: d["units_paid"] == expected)
    return deal["units_paid"]


def wait_until_open(deal: dict) -> None:
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
    gateways = SandboxGateways(tmp_path / "var", tmp_path / "sandbox.log")  # Alipay, WeChat Pay
    env = (
        settings_env(postgres_url, tmp_path / "var")
        | gateways.env()
        | {"REDCART_SETTLE_GRACE_SECONDS": "0"}
    )
    # one process on each HTTP server, as a sale's API tier on granian beside a room tier on
    # uvicorn (redcart.serving): whichever takes the deal, the other forwards to it
    servers: list[ApiServer] = []
    try:
        for name in SERVERS:  # each hears from the providers about the payments started at it
            port = _free_port()
            public = {"REDCART_PUBLIC_URL": f"http://127.0.0.1:{port}"}
            servers.append(ApiServer(env | public, tmp_path / f"{name}.log", port, server=name))
        for server in servers:
            server.wait_ready()
        deal, tokens = seed(servers[0].url, UNITS, payment_window=30)
        wait_until_open(deal)
        first = race([s.url for s in servers], deal["id"], tokens, "r1")
        won = Counter(buyer for buyer, status, _ in first if status == 201)
        assert sum(won.values()) == UNITS  # demand is 120 units: every unit goes, none twice
        assert max(won.values()) <= LIMIT

        paid = pay_a_share(servers, tokens, first)
        assert [units_paid(s.url, deal["id"], PAID) for s in servers] == [PAID, PAID]

        owner = owner_pid(postgres_url, deal["id"])
        (dead,) = [s for s in servers if owner in s.app_pids()]
        (survivor,) = [s for s in servers if s is not dead]
        os.kill(owner, signal.SIGKILL)
        dead.process.wait(10)  # on granian, its main process exits with its worker

        # The rest go unpaid: at their deadline (the 30 s payment window, no grace) their units
        # are back, the paid ones stay sold, and the survivor (which never owned the deal)
        # takes it over for the second round.
        lapse = max(datetime.fromisoformat(a["held_until"]) for _, s, a in first if s == 201)
        time.sleep(max(0.0, (lapse - datetime.now(UTC)).total_seconds()) + 0.5)
        second = race([survivor.url], deal["id"], tokens, "r2")
        again = Counter(buyer for buyer, status, _ in second if status == 201)
        assert sum(again.values()) == UNITS - PAID
        paid_by = Counter(paid.values())  # paid units count against their buyer's limit
        assert all(paid_by[buyer] + again[buyer] <= LIMIT for buyer in range(BUYERS))
        assert owner_pid(postgres_url, deal["id"]) in survivor.app_pids()
        assert units_paid(survivor.url, deal["id"], PAID) == PAID
        every_claim_gets_its_order(settings, UUID(deal["id"]), 2 * UNITS - PAID)
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.stop()
        gateways.stop()

    live = livestream_app(settings, create_table=False)
    commerce = commerce_app(settings, create_table=False)
    try:
        stored = live.repository.get(UUID(deal["id"]))
        assert isinstance(stored, FlashDeal)
        assert len(stored.claimants) == 2 * UNITS - PAID  # one claim per 201, no more
        # Replay the deal claim by claim: when each claim was decided, the claims still holding
        # units (lapsed ones no longer count) never exceeded the quantity.
        events = [live.mapper.to_domain_event(e) for e in live.recorder.select_events(stored.id)]
        for event in events:
            if type(event).__name__ != "Claimed":
                continue
            then = live.repository.get(stored.id, version=event.originator_version)
            decided_at = event.pay_by - then.payment_window - then.settle_grace
            assert then.units_claimed(decided_at) <= UNITS
        orders = {
            claim_id: commerce.repository.get(_order_id(claim_id)) for claim_id in stored.claimants
        }
        assert all(isinstance(o, Order) and o.drawn_from == stored.id for o in orders.values())

        # Units sold: the paid claims' orders were paid, and no other order; the deal agrees.
        sold = {claim_id for claim_id, order in orders.items() if order.payment_ref is not None}
        assert sold == set(paid) == {c for c in stored.claimants if stored.is_paid(c)}
        units_sold = sum(orders[claim_id].lines[0]["quantity"] for claim_id in sold)
        assert units_sold == stored.units_paid == PAID <= UNITS
        # The first round's unpaid claims lapsed, and their orders expired, unpaid.
        now = datetime.now(UTC)
        for claim_id in {UUID(a["id"]) for _, s, a in first if s == 201} - sold:
            assert orders[claim_id].status(now) == EXPIRED
            assert claim_id not in stored.claims or claim_id in stored.lapsed(now)
        assert stored.units_claimed(now) == UNITS  # the paid units and the second round's
        # The warehouse: each paid order drew its units from the deal's hold, nothing else did,
        # and the hold kept the rest; nothing has shipped, so nothing left the shelf.
        product_id = ids.product_id(stored.merchant_id, stored.sku)
        stock = commerce.repository.get(ids.stock_id(product_id, stored.warehouse_id))
        assert isinstance(stock, Stock)
        drawn = {rid: held for rid, held in stock.reservations.items() if rid != stored.id}
        assert drawn == {orders[c].id: (orders[c].lines[0]["quantity"], None) for c in sold}
        assert stock.reservations[stored.id][0] == UNITS - units_sold
        assert stock.on_hand == UNITS + 5
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
