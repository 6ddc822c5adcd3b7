"""Orders paid through the sandbox gateways, end to end: real API server, real sandboxes,
signed notifications into the webhooks; exactly once however often a notification comes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath

from redcart.wiring import migrate
from tests.conftest import _free_port, make_settings
from tests.integration.conftest import ADDRESS, ADMIN
from tests.integration.test_concurrency import resident_id, seed
from tests.payments.servers import LoopbackServer
from tests.servers import ApiServer, SandboxGateways, settings_env

PROVIDERS = ["alipay", "wechatpay"]


class Shop:
    def __init__(self, api: str) -> None:
        self.api = api
        self.merchant_id, _, tokens = seed(api)
        self.buyer = {"Authorization": f"Bearer {tokens[0]}"}
        self.n = 0

    def order(self) -> dict:
        self.n += 1
        body = {
            "merchant_id": self.merchant_id,
            "lines": [{"sku": "LAST-10", "quantity": 1}],
            "identity": {"name": "买家", "resident_id": resident_id(self.n)},
            "address": ADDRESS,
        }
        r = httpx.post(self.api + "/orders", json=body, headers=self.buyer, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()

    def pay(self, order_id: str, provider: str) -> dict:
        r = httpx.post(
            f"{self.api}/orders/{order_id}/payments",
            json={"provider": provider},
            headers=self.buyer,
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def get(self, path: str) -> dict:
        r = httpx.get(self.api + path, headers=self.buyer, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_for(self, path: str, check, timeout: float = 15.0) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(path)
            if check(body) or time.monotonic() > deadline:
                return body
            time.sleep(0.1)


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxGateways, Path]]:
    var = tmp_path_factory.mktemp("var")
    gateways = SandboxGateways(var, var / "sandbox.log")
    yield gateways, var
    gateways.stop()


def start_api(store_url: str | None, var: Path, tmp: Path, gateways: SandboxGateways,
              public_url: str | None = None, **extra: str) -> ApiServer:  # fmt: skip
    settings = make_settings(store_url, var)
    migrate(settings)
    port = _free_port()
    env = (
        settings_env(store_url, var)
        | gateways.env()
        | {"REDCART_PUBLIC_URL": public_url or f"http://127.0.0.1:{port}", **extra}
    )
    return ApiServer(env, tmp / f"api-{port}.log", port=port).wait_ready()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_buyer_pays_through_the_sandbox_and_the_order_is_paid(
    store_url: str | None, sandboxes, tmp_path: Path, provider: str
) -> None:
    gateways, var = sandboxes
    api = start_api(store_url, var, tmp_path, gateways)
    try:
        shop = Shop(api.url)
        order = shop.order()
        started = shop.pay(order["id"], provider)
        assert started["next_action"]["type"] == "qr_code"
        assert started["amount_fen"] == order["total_fen"]
        again = httpx.post(
            f"{api.url}/orders/{order['id']}/payments",
            json={"provider": provider},
            headers=shop.buyer,
            timeout=30,
        )
        assert again.status_code == 200 and again.json()["out_trade_no"] == started["out_trade_no"]
        page = httpx.get(started["sandbox_pay_page"], timeout=10)
        assert page.status_code == 200 and started["out_trade_no"] in page.text
        httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        paid = shop.wait_for(f"/orders/{order['id']}", lambda o: o["status"] == "paid")
        assert paid["status"] == "paid"
        assert paid["payment_ref"] == started["out_trade_no"]
        payments = shop.wait_for(
            f"/orders/{order['id']}/payments", lambda b: b["items"][0]["status"] == "succeeded"
        )
        assert [p["status"] for p in payments["items"]] == ["succeeded"]
    finally:
        api.stop()


class Capture:
    """Stands where the provider thinks the merchant is: keeps the signed request, says OK."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, bytes]] = []

        @post("/webhooks/{provider:str}", status_code=200)
        async def receive(provider: FromPath[str], request: Request) -> Response:
            self.requests.append((provider, dict(request.headers), await request.body()))
            if provider == "alipay":
                return Response(b"success", media_type="text/plain")
            return Response(b"", status_code=204)

        self.app = Litestar([receive])


@pytest.mark.postgres
@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_notification_ten_times_shuffled_across_two_processes_pays_once(
    postgres_url: str, sandboxes, tmp_path: Path, provider: str
) -> None:
    gateways, var = sandboxes
    capture = Capture()
    receiver = LoopbackServer(capture.app).start()
    apis = [
        start_api(postgres_url, var, tmp_path, gateways, public_url=receiver.url) for _ in range(2)
    ]
    try:
        shop = Shop(apis[0].url)
        order = shop.order()
        started = shop.pay(order["id"], provider)
        httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        deadline = time.monotonic() + 10
        while not capture.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        (_, headers, body), *_ = capture.requests
        forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        targets = [apis[i % 2].url for i in range(10)]
        random.shuffle(targets)

        def deliver(url: str) -> int:
            r = httpx.post(f"{url}/webhooks/{provider}", content=body, headers=forward, timeout=30)
            return r.status_code

        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(deliver, targets))
        assert set(statuses) == ({200} if provider == "alipay" else {204})
        final = shop.get(f"/orders/{order['id']}")
        assert final["status"] == "paid"
        assert [h["status"] for h in final["history"]] == ["placed", "paid"]
        tampered = (
            body.replace(b"TRADE_SUCCESS", b"TRADE_CLOSED")
            if provider == "alipay"
            else body[:-10] + b"AAAAAAAAA}"
        )
        r = httpx.post(
            f"{apis[1].url}/webhooks/{provider}", content=tampered, headers=forward, timeout=30
        )
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    finally:
        for api in apis:
            api.stop()
        receiver.stop()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancelling_an_order_closes_its_payment_at_the_gateway(
    sandboxes, tmp_path: Path, provider: str
) -> None:
    gateways, var = sandboxes
    api = start_api(None, var, tmp_path, gateways)
    try:
        shop = Shop(api.url)
        order = shop.order()
        started = shop.pay(order["id"], provider)
        r = httpx.post(
            f"{api.url}/orders/{order['id']}/cancel", json={}, headers=shop.buyer, timeout=30
        )
        assert r.status_code == 200
        closed = shop.wait_for(
            f"/orders/{order['id']}/payments", lambda b: b["items"][0]["status"] == "closed"
        )
        assert closed["items"][0]["status"] == "closed"
        approve = httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10)
        assert approve.status_code >= 400  # the gateway refuses to take money for it now
    finally:
        api.stop()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_payment_that_lands_after_expiry_is_refunded_automatically(
    sandboxes, tmp_path: Path, provider: str
) -> None:
    gateways, var = sandboxes
    # The sweeper is slowed down so the gateway still takes the money after the order lapsed.
    api = start_api(
        None,
        var,
        tmp_path,
        gateways,
        REDCART_RESERVATION_TTL_SECONDS="1",
        REDCART_SWEEP_INTERVAL_SECONDS="3600",
    )
    try:
        shop = Shop(api.url)
        order = shop.order()
        started = shop.pay(order["id"], provider)
        time.sleep(1.3)
        assert shop.get(f"/orders/{order['id']}")["status"] == "expired"
        httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        refunded = shop.wait_for(
            f"/orders/{order['id']}/payments", lambda b: b["items"][0]["refunded_fen"] > 0
        )
        assert refunded["items"][0]["refunded_fen"] == order["total_fen"]
        assert shop.get(f"/orders/{order['id']}")["status"] == "expired"
        assert shop.get(f"/orders/{order['id']}")["payment_ref"] is None
    finally:
        api.stop()


def test_a_forged_notification_is_refused_and_nothing_is_recorded(
    sandboxes, tmp_path: Path
) -> None:
    gateways, var = sandboxes
    api = start_api(None, var, tmp_path, gateways)
    try:
        before = httpx.get(api.url + "/readyz").json()["events"]
        forged = b"trade_status=TRADE_SUCCESS&out_trade_no=rc123&total_amount=1.00&sign=AAAA"
        r = httpx.post(
            api.url + "/webhooks/alipay",
            content=forged,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code in (400, 401) and r.headers["content-type"].startswith(
            "application/problem+json"
        )
        r = httpx.post(api.url + "/webhooks/wechatpay", content=b"{}")
        assert r.status_code in (400, 401)
        assert httpx.post(api.url + "/webhooks/nope", content=b"x").status_code == 404
        assert httpx.get(api.url + "/readyz").json()["events"] == before
        assert httpx.get(api.url + "/admin/merchants", headers=ADMIN).status_code == 200
    finally:
        api.stop()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reconciliation_settles_a_payment_whose_notification_never_came(
    sandboxes, tmp_path: Path, provider: str
) -> None:
    gateways, var = sandboxes
    dead = f"http://127.0.0.1:{_free_port()}"  # notifications go nowhere
    api = start_api(None, var, tmp_path, gateways, public_url=dead)
    try:
        shop = Shop(api.url)
        order = shop.order()
        started = shop.pay(order["id"], provider)
        httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        time.sleep(0.5)
        assert shop.get(f"/orders/{order['id']}")["status"] == "placed"
        env = settings_env(None, var) | gateways.env()
        run = subprocess.run(
            [sys.executable, "-m", "redcart.cli", "payments", "reconcile"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started["out_trade_no"] in run.stdout
        assert "settled (paid)" in run.stdout, run.stdout + run.stderr
        assert shop.get(f"/orders/{order['id']}")["status"] == "paid"
        again = subprocess.run(
            [sys.executable, "-m", "redcart.cli", "payments", "reconcile"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "settled" not in again.stdout and again.returncode == 0, again.stdout
    finally:
        api.stop()


def customs_body(consignee: str = ADDRESS["recipient"]) -> dict:
    return {
        "customs_code": "NINGBO",
        "merchant_customs_no": "3302461234",
        "merchant_customs_name": "Race Trading",
        "carrier": "SF",
        "waybill_no": "SF1234567",
        "consignee": consignee,
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_three_matching_documents_declare_the_order_and_customs_answers(
    sandboxes, tmp_path: Path, provider: str
) -> None:
    gateways, var = sandboxes
    api = start_api(None, var, tmp_path, gateways)
    try:
        shop = Shop(api.url)
        merchant = {"Authorization": f"Bearer {shop_key(api.url, shop)}"}
        order = shop.order()
        started = shop.pay(order["id"], provider)
        httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        shop.wait_for(f"/orders/{order['id']}", lambda o: o["status"] == "paid")
        path = f"{api.url}/orders/{order['id']}/customs/declaration"
        wrong = httpx.post(path, json=customs_body("someone else"), headers=merchant, timeout=30)
        assert wrong.status_code == 200, wrong.text
        assert wrong.json()["customs"]["verdict"] == "mismatched"
        assert "consignee" in wrong.json()["customs"]["reasons"][0]
        assert shop.get(f"/orders/{order['id']}")["status"] == "paid"
        right = httpx.post(path, json=customs_body(), headers=merchant, timeout=30)
        assert right.json()["customs"]["verdict"] == "matched", right.text
        assert right.json()["customs"]["documents"]["payment"]["identity_check"] == "match"
        assert shop.get(f"/orders/{order['id']}")["status"] == "customs_declared"
        reject = httpx.post(
            f"{api.url}/orders/{order['id']}/customs/reject",
            headers=ADMIN,
            json={"reason": "HS code does not match the goods"},
            timeout=30,
        )
        assert reject.json()["status"] == "customs_rejected"
        assert reject.json()["customs"]["reason"] == "HS code does not match the goods"
        again = httpx.post(path, json=customs_body(), headers=merchant, timeout=30)
        assert again.json()["order"]["status"] == "customs_declared"
        cleared = httpx.post(
            f"{api.url}/orders/{order['id']}/customs/clear", headers=ADMIN, timeout=30
        )
        assert cleared.json()["status"] == "customs_cleared"
        gone = httpx.post(path, json=customs_body(), headers=merchant, timeout=30)
        assert gone.status_code == 409  # cleared: nothing to declare, identity erased
    finally:
        api.stop()


def test_a_payer_who_is_not_the_buyer_fails_the_identity_check(sandboxes, tmp_path: Path) -> None:
    gateways, var = sandboxes
    api = start_api(None, var, tmp_path, gateways)
    try:
        shop = Shop(api.url)
        merchant = {"Authorization": f"Bearer {shop_key(api.url, shop)}"}
        body = {
            "merchant_id": shop.merchant_id,
            "lines": [{"sku": "LAST-10", "quantity": 1}],
            "identity": {"name": "买家", "resident_id": "110101199003070003"},
            "address": ADDRESS,
        }
        order = httpx.post(api.url + "/orders", json=body, headers=shop.buyer, timeout=30).json()
        started = shop.pay(order["id"], "alipay")
        httpx.post(f"{started['sandbox_pay_page']}/approve", timeout=10).raise_for_status()
        shop.wait_for(f"/orders/{order['id']}", lambda o: o["status"] == "paid")
        r = httpx.post(
            f"{api.url}/orders/{order['id']}/customs/declaration",
            json=customs_body(),
            headers=merchant,
            timeout=30,
        )
        assert r.json()["customs"]["verdict"] == "mismatched"
        assert r.json()["customs"]["reasons"] == ["payer identity check: mismatch"]
        assert shop.get(f"/orders/{order['id']}")["status"] == "paid"
    finally:
        api.stop()


def shop_key(api: str, shop: Shop) -> str:
    """The merchant key of the seeded shop (seed() onboarded it through the admin API)."""
    from uuid import UUID

    from commerce import credentials
    from tests.conftest import SECRET_KEY

    return credentials.issue(
        credentials.MERCHANT_PREFIX, UUID(shop.merchant_id), SECRET_KEY.encode()
    )
