"""Our WeChat Pay adapter against the same sandbox wechatpayv3 accepts, including the callbacks a
merchant must refuse: bad signature, stale timestamp, replay, wrong key serial, wrong APIv3 key."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from payments.adapters.wechatpay import WeChatPayGateway
from payments.adapters.wechatpay_crypto import decrypt_resource
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
from payments.sandbox.wechatpay_extras import MISMATCHED_CERT_NO
from payments.signing import generate_private_key, private_key_pem
from tests.payments.conftest import approve, set_switches

pytestmark = pytest.mark.timeout(30)


def make_gateway(base_url: str, keys, **overrides) -> WeChatPayGateway:
    settings = {
        "base_url": base_url,
        "mchid": "1900000109",
        "appid": "wxd678efh567hg6787",
        "merchant_private_key": keys.merchant_private_key,
        "merchant_serial_no": keys.identity["merchant_serial_no"],
        "platform_public_key": keys.gateway_public_key,
        "platform_public_key_id": keys.identity["platform_public_key_id"],
        "apiv3_key": keys.identity["apiv3_key"],
        **overrides,
    }
    return WeChatPayGateway(**settings)


@pytest.fixture
async def gateway(wechat_sandbox) -> AsyncIterator[WeChatPayGateway]:
    base_url, keys = wechat_sandbox
    adapter = make_gateway(base_url, keys)
    yield adapter
    await adapter.aclose()


async def paid_payment(gateway, sandbox_url, receiver, receiver_url, channel, amount_minor=8800):
    command = CreatePayment(
        order_id=channel,
        amount_minor=amount_minor,
        currency="CNY",
        method="wechat_pay",
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


async def test_full_payment_round_trip(gateway, wechat_sandbox, notify_receiver, channel):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    started, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    assert isinstance(started.next_action, DisplayQrCode)
    assert started.next_action.data.startswith("weixin://wxpay/bizpayurl?pr=")

    notification = gateway.parse_notification(delivered.headers, delivered.body)
    assert (notification.kind, notification.status) == (
        NotificationKind.PAYMENT,
        PaymentStatus.SUCCEEDED,
    )
    assert (notification.amount_minor, notification.currency) == (8800, "CNY")
    assert notification.provider_event_id == json.loads(delivered.body)["id"]
    ack = gateway.acknowledgement(accepted=True)
    assert (ack.status_code, ack.body) == (204, b"")
    assert gateway.acknowledgement(accepted=False).status_code >= 400

    state = await gateway.query_payment(started.out_trade_no)
    assert (state.status, state.amount_minor) == (PaymentStatus.SUCCEEDED, 8800)
    assert state.provider_payment_ref


async def test_replayed_callback_is_refused(gateway, wechat_sandbox, notify_receiver, channel):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    gateway.parse_notification(delivered.headers, delivered.body)
    with pytest.raises(ReplayedNotification):
        gateway.parse_notification(delivered.headers, delivered.body)


async def test_bad_signature_switch(gateway, wechat_sandbox, notify_receiver, channel):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    set_switches(base_url, bad_signature=True)
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    with pytest.raises(BadSignature):
        gateway.parse_notification(delivered.headers, delivered.body)


async def test_late_callback_is_stale(gateway, wechat_sandbox, notify_receiver, channel):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    set_switches(base_url, late_by_seconds=301)
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    with pytest.raises(StaleNotification):
        gateway.parse_notification(delivered.headers, delivered.body)


async def test_fresh_signature_is_checked_against_our_clock(
    wechat_sandbox, notify_receiver, channel
):
    """The same authentic callback is stale to a merchant whose clock is 6 minutes ahead."""
    base_url, keys = wechat_sandbox
    receiver, receiver_url = notify_receiver
    ahead = make_gateway(base_url, keys, clock=lambda: time.time() + 360)
    fair = make_gateway(base_url, keys)
    command = CreatePayment(
        channel,
        100,
        "CNY",
        "wechat_pay",
        out_trade_no_for(channel),
        "x",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    await fair.create_payment(command)
    approve(base_url, command.out_trade_no)
    delivered = receiver.wait_for(channel, 1)[0]
    with pytest.raises(StaleNotification):
        ahead.parse_notification(delivered.headers, delivered.body)
    assert fair.parse_notification(delivered.headers, delivered.body).amount_minor == 100
    await ahead.aclose()
    await fair.aclose()


async def test_tampering_and_foreign_serial_are_refused(
    gateway, wechat_sandbox, notify_receiver, channel
):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    _, delivered = await paid_payment(gateway, base_url, receiver, receiver_url, channel)
    envelope = json.loads(delivered.body)
    envelope["event_type"] = "REFUND.SUCCESS"
    with pytest.raises(BadSignature):
        gateway.parse_notification(delivered.headers, json.dumps(envelope).encode())
    foreign = {**delivered.headers, "wechatpay-serial": "PUB_KEY_ID_SOMEONE_ELSE"}
    with pytest.raises(BadSignature):
        gateway.parse_notification(foreign, delivered.body)


def test_resource_needs_the_right_apiv3_key(wechat_sandbox):
    _, keys = wechat_sandbox
    from payments.sandbox.wechatpay_wire import encrypted_envelope

    envelope = json.loads(
        encrypted_envelope(
            "TRANSACTION.SUCCESS",
            "ok",
            "transaction",
            {"out_trade_no": "x"},
            keys.identity["apiv3_key"],
        )
    )
    assert decrypt_resource(envelope["resource"], keys.identity["apiv3_key"]) == {
        "out_trade_no": "x"
    }
    with pytest.raises(BadSignature):
        decrypt_resource(envelope["resource"], "0" * 32)


async def test_refund_round_trip(gateway, wechat_sandbox, notify_receiver, channel):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    started, _ = await paid_payment(gateway, base_url, receiver, receiver_url, channel, 5000)
    refund = RefundPayment(
        started.out_trade_no, out_refund_no_for(started.out_trade_no, 1), 1500, 5000, "CNY"
    )
    result = await gateway.refund(refund)
    assert (result.status, result.refund_minor) == (RefundStatus.PENDING, 1500)
    assert (await gateway.refund(refund)).out_refund_no == refund.out_refund_no  # idempotent
    refund_note = gateway.parse_notification(*_pair(receiver.wait_for(channel, 2)[1]))
    assert (refund_note.kind, refund_note.refund_minor) == (NotificationKind.REFUND, 1500)
    assert refund_note.out_refund_no == refund.out_refund_no
    assert (await gateway.query_payment(started.out_trade_no)).status is PaymentStatus.REFUNDED
    with pytest.raises(ProviderRejected) as rejected:
        await gateway.refund(
            RefundPayment(
                started.out_trade_no, out_refund_no_for(started.out_trade_no, 2), 3501, 5000, "CNY"
            )
        )
    assert rejected.value.code == "NOT_ENOUGH"


async def test_close_and_unknown_order(gateway, channel):
    out_trade_no = out_trade_no_for(channel)
    await gateway.create_payment(
        CreatePayment(
            channel, 100, "CNY", "wechat_pay", out_trade_no, "x", notify_url="http://127.0.0.1:9/n"
        )
    )
    await gateway.close_payment(out_trade_no)
    assert (await gateway.query_payment(out_trade_no)).status is PaymentStatus.CLOSED
    with pytest.raises(ProviderRejected) as rejected:
        await gateway.query_payment("no-such-order")
    assert rejected.value.code == "ORDER_NOT_EXIST"


async def test_requests_signed_with_another_key_are_refused(wechat_sandbox):
    base_url, keys = wechat_sandbox
    stranger = make_gateway(
        base_url, keys, merchant_private_key=private_key_pem(generate_private_key())
    )
    with pytest.raises(ProviderRejected) as rejected:
        await stranger.query_payment("x")
    assert rejected.value.code == "SIGN_ERROR"
    await stranger.aclose()


async def test_customs_declaration(gateway, wechat_sandbox, notify_receiver, channel):
    base_url, _ = wechat_sandbox
    receiver, receiver_url = notify_receiver
    started, _ = await paid_payment(gateway, base_url, receiver, receiver_url, channel)

    def declaration(order_no: str, cert_no: str) -> DeclareCustoms:
        return DeclareCustoms(
            out_trade_no=started.out_trade_no,
            out_request_no=order_no,
            order_no=order_no,
            customs_code="HANGZHOU_ZS",
            merchant_customs_no="3301960000",
            merchant_customs_name="Redcart HZ",
            amount_minor=8800,
            payer_name="王五",
            payer_id_number=cert_no,
        )

    matched = await gateway.declare_customs(declaration("SO-1", "330102199001011234"))
    mismatched = await gateway.declare_customs(declaration("SO-2", MISMATCHED_CERT_NO))
    assert matched.identity_check is IdentityCheck.MATCH
    assert mismatched.identity_check is IdentityCheck.MISMATCH
    assert matched.declaration_ref != mismatched.declaration_ref


def _pair(received):
    return received.headers, received.body
