"""The Alipay sandbox speaks OpenAPI faithfully enough for python-alipay-sdk as the merchant.

The SDK signs requests, verifies our signed ``*_response`` text and verifies our notifications with
its own code, so a mistake in the sandbox's signing content or encoding fails these tests.
"""

from __future__ import annotations

import itertools
import urllib.parse
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from alipay import AliPay
from alipay.exceptions import AliPayValidationError

from payments.port import out_trade_no_for
from payments.signing import generate_private_key, private_key_pem, public_key_pem
from tests.payments.conftest import approve

BEIJING = ZoneInfo("Asia/Shanghai")  # the sandbox, like the gateways, bills by Beijing day

pytestmark = pytest.mark.timeout(30)


def merchant_sdk(
    base_url: str, keys, *, private_key: str | None = None, alipay_public_key: str | None = None
) -> AliPay:
    sdk = AliPay(
        appid="2021000000000001",
        app_notify_url=None,
        app_private_key_string=private_key or keys.merchant_private_key,
        alipay_public_key_string=alipay_public_key or keys.gateway_public_key,
        sign_type="RSA2",
    )
    sdk._gateway = f"{base_url}/gateway.do"  # the SDK exposes no public setting for this
    return sdk


def sdk_verifies(sdk: AliPay, raw_body: bytes) -> bool:
    fields = dict(urllib.parse.parse_qsl(raw_body.decode(), keep_blank_values=True))
    signature = fields.pop("sign")
    return sdk.verify(fields, signature)


def test_precreate_pay_and_notification_verified_by_sdk(alipay_sandbox, notify_receiver, channel):
    base_url, keys = alipay_sandbox
    receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys)
    out_trade_no = out_trade_no_for(channel)

    created = sdk.api_alipay_trade_precreate(
        subject="Live drop #1",
        out_trade_no=out_trade_no,
        total_amount="88.00",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    assert created["code"] == "10000"
    assert created["qr_code"].endswith(f"/_sandbox/pay/{out_trade_no}")
    assert sdk.api_alipay_trade_query(out_trade_no=out_trade_no)["trade_status"] == "WAIT_BUYER_PAY"

    page = httpx.get(created["qr_code"])
    assert page.status_code == 200
    assert "Approve payment" in page.text

    approve(base_url, out_trade_no)
    [notification] = receiver.wait_for(channel, 1)
    assert sdk_verifies(sdk, notification.body)
    fields = dict(urllib.parse.parse_qsl(notification.body.decode()))
    assert fields["trade_status"] == "TRADE_SUCCESS"
    assert fields["total_amount"] == "88.00"
    assert sdk.api_alipay_trade_query(out_trade_no=out_trade_no)["trade_status"] == "TRADE_SUCCESS"


def test_tampered_notification_fails_sdk_verification(alipay_sandbox, notify_receiver, channel):
    base_url, keys = alipay_sandbox
    receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys)
    out_trade_no = out_trade_no_for(channel)
    sdk.api_alipay_trade_precreate(
        subject="x",
        out_trade_no=out_trade_no,
        total_amount="1.00",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    approve(base_url, out_trade_no)
    [notification] = receiver.wait_for(channel, 1)
    tampered = notification.body.replace(b"total_amount=1.00", b"total_amount=100.00")
    assert tampered != notification.body
    assert not sdk_verifies(sdk, tampered)


def test_request_signed_with_unknown_key_is_refused(alipay_sandbox):
    base_url, keys = alipay_sandbox
    stranger = merchant_sdk(base_url, keys, private_key=private_key_pem(generate_private_key()))
    answer = stranger.api_alipay_trade_query(out_trade_no="whatever")
    assert (answer["code"], answer["sub_code"]) == ("40002", "isv.invalid-signature")


def test_sdk_rejects_response_signed_by_another_gateway_key(alipay_sandbox):
    base_url, keys = alipay_sandbox
    other_key = public_key_pem(generate_private_key().public_key())
    sdk = merchant_sdk(base_url, keys, alipay_public_key=other_key)
    with pytest.raises(AliPayValidationError):
        sdk.api_alipay_trade_query(out_trade_no="whatever")


def test_refunds_are_idempotent_and_bounded(alipay_sandbox, notify_receiver, channel):
    base_url, keys = alipay_sandbox
    receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys)
    out_trade_no = out_trade_no_for(channel)
    sdk.api_alipay_trade_precreate(
        subject="x",
        out_trade_no=out_trade_no,
        total_amount="50.00",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    approve(base_url, out_trade_no)
    receiver.wait_for(channel, 1)

    first = sdk.api_alipay_trade_refund("30.00", out_trade_no=out_trade_no, out_request_no="r1")
    again = sdk.api_alipay_trade_refund("30.00", out_trade_no=out_trade_no, out_request_no="r1")
    too_much = sdk.api_alipay_trade_refund("30.00", out_trade_no=out_trade_no, out_request_no="r2")
    assert (first["code"], first["fund_change"], first["refund_fee"]) == ("10000", "Y", "30.00")
    assert (again["code"], again["fund_change"]) == ("10000", "N")
    assert too_much["code"] == "40004"

    notifications = receiver.wait_for(channel, 2)
    refund_note = dict(urllib.parse.parse_qsl(notifications[1].body.decode()))
    assert sdk_verifies(sdk, notifications[1].body)
    assert (refund_note["out_biz_no"], refund_note["refund_fee"]) == ("r1", "30.00")


def test_close_unpaid_trade(alipay_sandbox, channel):
    base_url, keys = alipay_sandbox
    sdk = merchant_sdk(base_url, keys)
    out_trade_no = out_trade_no_for(channel)
    sdk.api_alipay_trade_precreate(subject="x", out_trade_no=out_trade_no, total_amount="9.99")
    assert sdk.api_alipay_trade_close(out_trade_no=out_trade_no)["code"] == "10000"
    assert sdk.api_alipay_trade_query(out_trade_no=out_trade_no)["trade_status"] == "TRADE_CLOSED"


def test_page_pay_redirects_the_browser_to_the_buyer_page(alipay_sandbox, channel):
    base_url, keys = alipay_sandbox
    sdk = merchant_sdk(base_url, keys)
    query = sdk.api_alipay_trade_page_pay(
        subject="Page pay",
        out_trade_no=out_trade_no_for(channel),
        total_amount="12.34",
        return_url="http://127.0.0.1/back",
    )
    page = httpx.get(f"{base_url}/gateway.do?{query}", follow_redirects=True)
    assert page.status_code == 200
    assert "Page pay" in page.text
    assert "12.34" in page.text


def test_retries_follow_the_compressed_schedule_until_success(
    alipay_sandbox, notify_receiver, channel
):
    base_url, keys = alipay_sandbox
    receiver, receiver_url = notify_receiver
    receiver.answer_next(channel, (200, b"fail"), (500, b"oops"), (200, b"success\n"))
    sdk = merchant_sdk(base_url, keys)
    out_trade_no = out_trade_no_for(channel)
    sdk.api_alipay_trade_precreate(
        subject="x",
        out_trade_no=out_trade_no,
        total_amount="1.00",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    approve(base_url, out_trade_no)
    # "success\n" is not exactly "success", so a fourth attempt must come.
    attempts = receiver.wait_for(channel, 4, timeout=10)
    ids = {dict(urllib.parse.parse_qsl(a.body.decode()))["notify_id"] for a in attempts}
    assert len(ids) == 1, "resends keep the notify_id"
    assert all(sdk_verifies(sdk, attempt.body) for attempt in attempts)
    deliveries = httpx.get(f"{base_url}/_sandbox/deliveries").json()
    mine = [d for d in deliveries if d["notice_id"] in ids]
    assert [d["acknowledged"] for d in mine] == [False, False, False, True]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(mine)]
    # 4 min and 10 min, times 0.001
    assert gaps[0] >= 0.24 * 0.9
    assert gaps[1] >= 0.6 * 0.9


def test_daily_bill_lists_payments_and_refunds(alipay_sandbox, notify_receiver, channel):
    base_url, keys = alipay_sandbox
    _receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys)
    out_trade_no = out_trade_no_for(channel)
    sdk.api_alipay_trade_precreate(
        subject="billed",
        out_trade_no=out_trade_no,
        total_amount="20.00",
        notify_url=f"{receiver_url}/notify/{channel}",
    )
    approve(base_url, out_trade_no)
    sdk.api_alipay_trade_refund("5.00", out_trade_no=out_trade_no, out_request_no="bill-r1")
    today = datetime.now(BEIJING).strftime("%Y-%m-%d")  # bills are by Beijing day
    answer = sdk.server_api(
        "alipay.data.dataservice.bill.downloadurl.query",
        biz_content={"bill_type": "trade", "bill_date": today},
    )
    bill = httpx.get(answer["bill_download_url"]).text
    mine = [line for line in bill.splitlines() if out_trade_no in line]
    assert len(mine) == 2
    assert any("20.00" in line and "交易" in line for line in mine)
    assert any("5.00" in line and "bill-r1" in line for line in mine)
