"""Our Stripe adapter against localstripe (a stateful Stripe peer in its own process), with the
webhook signature check cross-examined by the official ``stripe`` library's verifier."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.adapters.stripe import (
    STRIPE_API_VERSION,
    StripeGateway,
    form_pairs,
    next_action_of,
    verify_stripe_signature,
)
from payments.port import (
    BadSignature,
    CreatePayment,
    DeclareCustoms,
    DisplayQrCode,
    NotificationKind,
    PaymentGateway,
    PaymentStatus,
    ProviderRejected,
    RedirectToUrl,
    RefundPayment,
    RefundStatus,
    ReplayedNotification,
    StaleNotification,
    UnsupportedOperation,
    out_refund_no_for,
    out_trade_no_for,
)

pytestmark = pytest.mark.timeout(30)
FIXTURES = Path(__file__).with_name("fixtures")
WEBHOOK_SECRET = "whsec_redcart_test_secret"


@pytest.fixture
async def sent_requests() -> list[httpx.Request]:
    return []


@pytest.fixture
async def gateway(localstripe_url, sent_requests) -> AsyncIterator[StripeGateway]:
    async def record(request: httpx.Request) -> None:
        sent_requests.append(request)

    adapter = StripeGateway(
        api_key="sk_test_redcart",
        webhook_secret=WEBHOOK_SECRET,
        base_url=localstripe_url,
        confirm_wallets=False,  # localstripe rejects wallet-only parameters
        http=httpx.AsyncClient(event_hooks={"request": [record]}),
    )
    yield adapter
    await adapter.aclose()


def card_payment(channel: str, amount_minor: int = 5000, **extra) -> CreatePayment:
    return CreatePayment(
        channel, amount_minor, "USD", "card", out_trade_no_for(channel), "Live drop", **extra
    )


def test_adapter_satisfies_the_port(gateway):
    assert isinstance(gateway, PaymentGateway)
    assert "sk_test" not in repr(gateway)


async def test_card_payment_and_wire_format(gateway, sent_requests, channel):
    command = card_payment(channel, payment_method_ref="pm_card_visa")
    started = await gateway.create_payment(command)
    assert started.status is PaymentStatus.SUCCEEDED
    assert started.provider_payment_ref.startswith("pi_")

    [create] = [r for r in sent_requests if r.method == "POST"]
    assert create.headers["Idempotency-Key"] == command.out_trade_no
    assert create.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert create.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(urllib.parse.parse_qsl(create.content.decode()))
    assert form["metadata[order_id]"] == channel
    assert form["payment_method_types[0]"] == "card"
    assert (form["amount"], form["currency"], form["confirm"]) == ("5000", "usd", "true")

    state = await gateway.query_payment(started.provider_payment_ref)
    assert (state.status, state.amount_minor, state.currency) == (
        PaymentStatus.SUCCEEDED,
        5000,
        "USD",
    )
    assert state.out_trade_no == command.out_trade_no


async def test_manual_capture(gateway, channel):
    started = await gateway.create_payment(
        card_payment(channel, payment_method_ref="pm_card_visa", capture_manually=True)
    )
    assert started.status is PaymentStatus.REQUIRES_CAPTURE
    captured = await gateway.capture(started.provider_payment_ref)
    assert captured.status is PaymentStatus.SUCCEEDED


async def test_declined_card_is_a_provider_rejection(gateway, channel):
    with pytest.raises(ProviderRejected) as rejected:
        await gateway.create_payment(
            card_payment(channel, payment_method_ref="pm_card_chargeCustomerFail")
        )
    assert rejected.value.code == "card_declined"


async def test_partial_refund(gateway, channel):
    started = await gateway.create_payment(card_payment(channel, payment_method_ref="pm_card_visa"))
    refund = await gateway.refund(
        RefundPayment(
            started.provider_payment_ref,
            out_refund_no_for(started.out_trade_no, 1),
            1000,
            5000,
            "USD",
        )
    )
    assert (refund.status, refund.refund_minor, refund.currency) == (
        RefundStatus.SUCCEEDED,
        1000,
        "USD",
    )


async def test_cancel_unconfirmed_intent(gateway, channel):
    started = await gateway.create_payment(card_payment(channel))
    assert started.status is PaymentStatus.PENDING and started.next_action is None
    await gateway.close_payment(started.provider_payment_ref)
    state = await gateway.query_payment(started.provider_payment_ref)
    assert state.status is PaymentStatus.CLOSED


async def test_customs_is_unsupported(gateway):
    with pytest.raises(UnsupportedOperation):
        await gateway.declare_customs(DeclareCustoms("pi", "r", "o", "c", "m", "n", 1, "a", "b"))


async def test_webhook_from_localstripe(gateway, localstripe_url, notify_receiver, channel):
    receiver, receiver_url = notify_receiver
    httpx.post(
        f"{localstripe_url}/_config/webhooks/redcart-tests",
        headers={"Authorization": "Bearer sk_test_redcart"},
        data={
            "url": f"{receiver_url}/notify/{channel}",
            "secret": WEBHOOK_SECRET,
            "events[]": "payment_intent.succeeded",
        },
    ).raise_for_status()
    started = await gateway.create_payment(card_payment(channel, payment_method_ref="pm_card_visa"))

    def mine(request) -> bool:
        return json.loads(request.body)["data"]["object"]["id"] == started.provider_payment_ref

    # Events of earlier tests may reach this endpoint too (localstripe sends after 1 s).
    deadline = time.monotonic() + 10
    while not (matching := [r for r in receiver.received(channel) if mine(r)]):
        assert time.monotonic() < deadline, "no webhook for our PaymentIntent"
        await asyncio.sleep(0.05)
    delivered = matching[0]
    event = stripe.Webhook.construct_event(
        delivered.body, delivered.headers["stripe-signature"], WEBHOOK_SECRET
    )
    notification = gateway.parse_notification(delivered.headers, delivered.body)
    assert notification.provider_event_id == event["id"]
    assert (notification.kind, notification.status) == (
        NotificationKind.PAYMENT,
        PaymentStatus.SUCCEEDED,
    )
    assert (notification.amount_minor, notification.currency) == (5000, "USD")
    assert notification.out_trade_no == started.out_trade_no
    with pytest.raises(ReplayedNotification):
        gateway.parse_notification(delivered.headers, delivered.body)
    wrong_secret = StripeGateway(api_key="sk_test_x", webhook_secret="whsec_other")
    with pytest.raises(BadSignature):
        wrong_secret.parse_notification(delivered.headers, delivered.body)
    await wrong_secret.aclose()


def _stripe_accepts(payload: str, header: str, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        return False
    return True


def _we_accept(payload: str, header: str, secret: str) -> bool:
    try:
        verify_stripe_signature(payload.encode(), header, secret, now=time.time(), tolerance=300)
    except (BadSignature, StaleNotification):
        return False
    return True


def _header(payload: str, secret: str, age: int = 0) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=int(time.time()) - age
    )


@pytest.mark.parametrize(
    ("case", "make_header", "expected"),
    [
        ("fresh", lambda p: _header(p, WEBHOOK_SECRET), True),
        ("wrong secret", lambda p: _header(p, "whsec_wrong"), False),
        ("too old", lambda p: _header(p, WEBHOOK_SECRET, age=301), False),
        ("just in time", lambda p: _header(p, WEBHOOK_SECRET, age=290), True),
        (
            "rolled secrets",
            lambda p: _header(p, "whsec_old") + "," + _header(p, WEBHOOK_SECRET).split(",")[1],
            True,
        ),
        ("v0 only", lambda p: _header(p, WEBHOOK_SECRET).replace("v1=", "v0="), False),
        ("no timestamp", lambda p: _header(p, WEBHOOK_SECRET).split(",")[1], False),
    ],
)
def test_signature_check_agrees_with_stripe_library(case, make_header, expected):
    payload = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}, indent=2)
    header = make_header(payload)
    assert _stripe_accepts(payload, header, WEBHOOK_SECRET) is expected, case
    assert _we_accept(payload, header, WEBHOOK_SECRET) is expected, case


@settings(max_examples=50, deadline=None)
@given(payload=st.text(min_size=1), tamper=st.booleans(), age=st.integers(0, 600))
def test_signature_check_agrees_on_random_payloads(payload, tamper, age):
    header = _header(payload, WEBHOOK_SECRET, age=age)
    received = payload + "x" if tamper else payload
    assert _we_accept(received, header, WEBHOOK_SECRET) == _stripe_accepts(
        received, header, WEBHOOK_SECRET
    )


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("stripe_pi_alipay_requires_action.json", RedirectToUrl),
        ("stripe_pi_wechat_pay_requires_action.json", DisplayQrCode),
    ],
)
def test_wallet_next_actions(fixture, expected):
    intent = json.loads((FIXTURES / fixture).read_text())
    action = next_action_of(intent)
    assert isinstance(action, expected)
    if isinstance(action, DisplayQrCode):
        assert action.data.startswith("weixin://")
    else:
        assert action.url.startswith("https://hooks.stripe.com/redirect/")


def test_wallet_request_parameters_use_bracket_notation():
    pairs = form_pairs(
        {
            "payment_method_types": ["wechat_pay"],
            "payment_method_data": {"type": "wechat_pay"},
            "payment_method_options": {"wechat_pay": {"client": "web"}},
            "metadata": {"order_id": "o-1"},
            "confirm": True,
            "skip": None,
        }
    )
    assert pairs == [
        ("payment_method_types[0]", "wechat_pay"),
        ("payment_method_data[type]", "wechat_pay"),
        ("payment_method_options[wechat_pay][client]", "web"),
        ("metadata[order_id]", "o-1"),
        ("confirm", "true"),
    ]
