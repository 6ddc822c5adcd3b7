"""Our Alipay adapter against the same sandbox python-alipay-sdk accepts: round trips, and the
notifications a merchant must refuse (bad signature, stale, replayed, tampered)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.adapters.alipay import (
    AlipayGateway,
    extract_signed_response,
    minor_to_yuan,
    yuan_to_minor,
)
from payments.port import (
    BadSignature,
    CreatePayment,
    DeclareCustoms,
    DisplayQrCode,
    IdentityCheck,
    NotificationKind,
    PaymentGateway,
    PaymentStatus,
    ProviderRejected,
    RefundPayment,
    RefundStatus,
    ReplayedNotification,
    StaleNotification,
    out_refund_no_for,
    out_trade_no_for,
)
from payments.sandbox.alipay import MISMATCHED_CERT_NO
from payments.signing import generate_private_key, private_key_pem, public_key_pem
from tests.payments.conftest import approve, set_switches

pytestmark = pytest.mark.timeout(30)


def make_gateway(base_url: str, keys, **overrides: str) -> AlipayGateway:
    settings = {
        "gateway_url": f"{base_url}/gateway.do",
        "app_id": "2021000000000001",
        "merchant_private_key": keys.merchant_private_key,
        "alipay_public_key": keys.gateway_public_key,
        **overrides,
    }
    return AlipayGateway(**settings)


@pytest.fixture
async def gateway(alipay_sandbox) -> AsyncIterator[AlipayGateway]:
    base_url, keys = alipay_sandbox
    adapter = make_gateway(base_url, keys)
    yield adapter
    await adapter.aclose()


async def paid_payment(
    gateway: AlipayGateway,
    sandbox_url: str,
    receiver,
    receiver_url: str,
    channel: str,
    amount_minor: int = 8800,
):
    command = CreatePayment(
        order_id=channel,
        amount_minor=amount_minor,
        currency="CNY",
        method="alipay",
        out_trade_no=out_trade_no_for(channel),
        subject="Live drop",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    started = await gateway.create_payment(command)
    approve(sandbox_url, command.out_trade_no)
    return started, receiver.wait_for(channel, 1)[0]


def test_adapter_satisfies_the_port(gateway):
    assert isinstance(gateway, PaymentGateway)
    assert "PRIVATE" not in repr(gateway)


async def test_full_payment_round_trip(gateway, alipay_sandbox, notify_receiver, channel):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    started, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    assert started.status is PaymentStatus.PENDING
    assert isinstance(started.next_action, DisplayQrCode)

    notification = gateway.parse_notification(delivered.headers, delivered.body)
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is PaymentStatus.SUCCEEDED
    assert (notification.amount_minor, notification.currency) == (8800, "CNY")
    assert notification.out_trade_no == started.out_trade_no
    assert notification.provider_event_id

    ack = gateway.acknowledgement(accepted=True)
    assert (ack.status_code, ack.body) == (200, b"success")
    state = await gateway.query_payment(started.out_trade_no)
    assert (state.status, state.amount_minor) == (PaymentStatus.SUCCEEDED, 8800)


async def test_replayed_notification_is_refused(gateway, alipay_sandbox, notify_receiver, channel):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    gateway.parse_notification(delivered.headers, delivered.body)
    with pytest.raises(ReplayedNotification):
        gateway.parse_notification(delivered.headers, delivered.body)


async def test_tampered_notification_is_refused(gateway, alipay_sandbox, notify_receiver, channel):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel, 100)
    tampered = delivered.body.replace(b"total_amount=1.00", b"total_amount=9999.00")
    assert tampered != delivered.body
    with pytest.raises(BadSignature):
        gateway.parse_notification(delivered.headers, tampered)


async def test_bad_signature_switch(gateway, alipay_sandbox, notify_receiver, channel):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    set_switches(base_url, bad_signature=True)
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    with pytest.raises(BadSignature):
        gateway.parse_notification(delivered.headers, delivered.body)


async def test_late_notification_is_stale(gateway, alipay_sandbox, notify_receiver, channel):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    set_switches(base_url, late_by_seconds=3600)
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    with pytest.raises(StaleNotification):
        gateway.parse_notification(delivered.headers, delivered.body)


async def test_duplicate_delivery_keeps_the_event_id(
    gateway, alipay_sandbox, notify_receiver, channel
):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    set_switches(base_url, duplicate=True)
    await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    first, second = receiver.wait_for(channel, 2)
    original = gateway.parse_notification(first.headers, first.body)
    if first.body == second.body:  # re-signed within the same second: an exact copy
        with pytest.raises(ReplayedNotification):
            gateway.parse_notification(second.headers, second.body)
    else:  # a re-signed resend is authentic; the event id is what deduplicates it
        resend = gateway.parse_notification(second.headers, second.body)
        assert resend.provider_event_id == original.provider_event_id


async def test_refund_notification_can_overtake_payment(
    gateway, alipay_sandbox, notify_receiver, channel
):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    set_switches(base_url, out_of_order=True)
    out_trade_no = out_trade_no_for(channel)
    await gateway.create_payment(
        CreatePayment(
            order_id=channel,
            amount_minor=5000,
            currency="CNY",
            method="alipay",
            out_trade_no=out_trade_no,
            subject="x",
            notify_url=f"{receiver_url}/notify/{channel}",
        )
    )
    approve(base_url, out_trade_no)
    await gateway.refund(
        RefundPayment(out_trade_no, out_refund_no_for(out_trade_no, 1), 1500, 5000, "CNY")
    )
    kinds = [
        gateway.parse_notification(n.headers, n.body).kind for n in receiver.wait_for(channel, 2)
    ]
    assert kinds == [NotificationKind.REFUND, NotificationKind.PAYMENT]


async def test_refunds(gateway, alipay_sandbox, notify_receiver, channel):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    started, _ = await paid_payment(gateway, base_url, receiver, receiver_url, channel, 5000)
    refund = RefundPayment(
        started.out_trade_no,
        out_refund_no_for(started.out_trade_no, 1),
        2000,
        5000,
        "CNY",
        reason="size",
    )
    first = await gateway.refund(refund)
    again = await gateway.refund(refund)
    assert first.status is RefundStatus.SUCCEEDED
    assert first.refund_minor == 2000
    assert again.raw["fund_change"] == "N"
    with pytest.raises(ProviderRejected) as rejected:
        await gateway.refund(
            RefundPayment(
                started.out_trade_no, out_refund_no_for(started.out_trade_no, 2), 3001, 5000, "CNY"
            )
        )
    assert rejected.value.code == "40004"
    refund_note = gateway.parse_notification({}, receiver.wait_for(channel, 2)[1].body)
    assert (refund_note.kind, refund_note.refund_minor) == (NotificationKind.REFUND, 2000)
    assert refund_note.out_refund_no == refund.out_refund_no


async def test_close_then_query(gateway, channel):
    out_trade_no = out_trade_no_for(channel)
    await gateway.create_payment(CreatePayment(channel, 100, "CNY", "alipay", out_trade_no, "x"))
    await gateway.close_payment(out_trade_no)
    assert (await gateway.query_payment(out_trade_no)).status is PaymentStatus.CLOSED


async def test_unknown_trade_is_a_provider_rejection(gateway):
    with pytest.raises(ProviderRejected) as rejected:
        await gateway.query_payment("does-not-exist")
    assert rejected.value.sub_code == "ACQ.TRADE_NOT_EXIST"


async def test_customs_declaration_reports_identity_check(
    gateway, alipay_sandbox, notify_receiver, channel
):
    base_url, _ = alipay_sandbox
    receiver, receiver_url = notify_receiver
    started, _ = await paid_payment(gateway, base_url, receiver, receiver_url, channel)

    def declaration(seq: int, cert_no: str) -> DeclareCustoms:
        return DeclareCustoms(
            out_trade_no=started.out_trade_no,
            out_request_no=f"{channel[:20]}-{seq}",
            order_no="SO-1",
            customs_code="HANGZHOU",
            merchant_customs_no="3301960000",
            merchant_customs_name="Redcart HZ",
            amount_minor=8800,
            payer_name="张三",
            payer_id_number=cert_no,
        )

    matched = await gateway.declare_customs(declaration(1, "330102199001011234"))
    mismatched = await gateway.declare_customs(declaration(2, MISMATCHED_CERT_NO))
    assert matched.identity_check is IdentityCheck.MATCH
    assert matched.declaration_ref
    assert mismatched.identity_check is IdentityCheck.MISMATCH
    assert "330102199001011234" not in repr(declaration(1, "330102199001011234"))


async def test_requests_signed_with_another_key_are_refused(alipay_sandbox):
    base_url, keys = alipay_sandbox
    stranger = make_gateway(
        base_url, keys, merchant_private_key=private_key_pem(generate_private_key())
    )
    with pytest.raises(ProviderRejected) as rejected:
        await stranger.query_payment("x")
    assert rejected.value.sub_code == "isv.invalid-signature"
    await stranger.aclose()


async def test_responses_signed_by_another_gateway_are_refused(alipay_sandbox):
    base_url, keys = alipay_sandbox
    trusting_wrong_key = make_gateway(
        base_url, keys, alipay_public_key=public_key_pem(generate_private_key().public_key())
    )
    with pytest.raises(BadSignature):
        await trusting_wrong_key.query_payment("x")
    await trusting_wrong_key.aclose()


@given(st.integers(min_value=0, max_value=10**12))
def test_yuan_conversion_round_trips(amount_minor: int):
    assert yuan_to_minor(minor_to_yuan(amount_minor)) == amount_minor


@pytest.mark.parametrize("bad", ["1.001", "-1.00", "abc", "NaN", "Infinity", ""])
def test_yuan_parsing_refuses_what_it_cannot_represent(bad: str):
    with pytest.raises(ValueError):
        yuan_to_minor(bad)


def test_minor_units_must_be_integers():
    with pytest.raises(TypeError):
        CreatePayment("o", 88.0, "CNY", "alipay", "t", "s")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        minor_to_yuan(True)  # type: ignore[arg-type]


def test_signed_response_is_cut_exactly_even_with_braces_in_strings():
    inner = '{"code":"10000","subject":"a } tricky { name","n":{"x":1}}'
    raw = f'{{"alipay_trade_query_response":{inner},"sign":"abc"}}'
    assert extract_signed_response(raw, "alipay_trade_query_response") == inner
