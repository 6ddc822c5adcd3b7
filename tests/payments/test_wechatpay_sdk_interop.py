"""The WeChat Pay sandbox speaks APIv3 faithfully enough for wechatpayv3 as the merchant.

The SDK builds its own Authorization signatures, verifies our response signatures and verifies
and decrypts our callbacks, so any deviation in signing content or AES-GCM framing fails here.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.type import RequestType

from payments.port import out_trade_no_for
from payments.sandbox.wechatpay_extras import MISMATCHED_CERT_NO
from payments.signing import generate_private_key, private_key_pem, public_key_pem
from tests.payments.conftest import approve, set_switches

BEIJING = ZoneInfo("Asia/Shanghai")  # the sandbox, like the gateways, bills by Beijing day

pytestmark = pytest.mark.timeout(30)
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"


def merchant_sdk(
    base_url: str,
    keys,
    *,
    notify_url: str | None = None,
    private_key: str | None = None,
    platform_key: str | None = None,
) -> WeChatPay:
    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=MCHID,
        private_key=private_key or keys.merchant_private_key,
        cert_serial_no=keys.identity["merchant_serial_no"],
        appid=APPID,
        apiv3_key=keys.identity["apiv3_key"],
        notify_url=notify_url,
        public_key=platform_key or keys.gateway_public_key,
        public_key_id=keys.identity["platform_public_key_id"],
    )
    sdk._core._gate_way = base_url  # the SDK exposes no public setting for this
    return sdk


def place_order(sdk: WeChatPay, out_trade_no: str, total: int = 8800) -> str:
    code, message = sdk.pay(
        description="Live drop",
        out_trade_no=out_trade_no,
        amount={"total": total, "currency": "CNY"},
    )
    assert code == 200, message
    return json.loads(message)["code_url"]


def test_native_order_and_callback_verified_by_sdk(wechat_sandbox, notify_receiver, channel):
    base_url, keys = wechat_sandbox
    receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys, notify_url=f"{receiver_url}/notify/{channel}")
    out_trade_no = out_trade_no_for(channel)

    code_url = place_order(sdk, out_trade_no)
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    code, message = sdk.query(out_trade_no=out_trade_no)
    assert (code, json.loads(message)["trade_state"]) == (200, "NOTPAY")

    approve(base_url, out_trade_no)
    [callback] = receiver.wait_for(channel, 1)
    result = sdk.callback(callback.headers, callback.body)
    assert result is not None, "SDK failed to verify or decrypt the callback"
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    transaction = result["resource"]
    assert transaction["trade_state"] == "SUCCESS"
    assert transaction["amount"]["total"] == 8800
    assert transaction["out_trade_no"] == out_trade_no
    assert json.loads(sdk.query(out_trade_no=out_trade_no)[1])["trade_state"] == "SUCCESS"


def test_sdk_refuses_callback_with_bad_signature(wechat_sandbox, notify_receiver, channel):
    base_url, keys = wechat_sandbox
    receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys, notify_url=f"{receiver_url}/notify/{channel}")
    set_switches(base_url, bad_signature=True)
    out_trade_no = out_trade_no_for(channel)
    place_order(sdk, out_trade_no, 100)
    approve(base_url, out_trade_no)
    callback = receiver.wait_for(channel, 1)[0]
    assert sdk.callback(callback.headers, callback.body) is None


def test_request_signed_with_unknown_key_gets_401(wechat_sandbox):
    base_url, keys = wechat_sandbox
    stranger = merchant_sdk(base_url, keys, private_key=private_key_pem(generate_private_key()))
    code, message = stranger.query(out_trade_no="whatever")
    assert (code, json.loads(message)["code"]) == (401, "SIGN_ERROR")


def test_sdk_refuses_response_from_another_platform_key(wechat_sandbox):
    base_url, keys = wechat_sandbox
    other = public_key_pem(generate_private_key().public_key())
    sdk = merchant_sdk(base_url, keys, platform_key=other)
    with pytest.raises(Exception, match="failed to verify the signature"):
        sdk.pay(
            description="x",
            out_trade_no="sdk-wrong-platform-key",
            amount={"total": 1},
            notify_url="http://127.0.0.1:9/notify",
        )


def test_refund_is_asynchronous_and_notified(wechat_sandbox, notify_receiver, channel):
    base_url, keys = wechat_sandbox
    receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys, notify_url=f"{receiver_url}/notify/{channel}")
    out_trade_no = out_trade_no_for(channel)
    place_order(sdk, out_trade_no, 5000)
    approve(base_url, out_trade_no)
    receiver.wait_for(channel, 1)

    code, message = sdk.refund(
        out_refund_no=f"{out_trade_no}-r1",
        out_trade_no=out_trade_no,
        amount={"refund": 1200, "total": 5000, "currency": "CNY"},
    )
    assert (code, json.loads(message)["status"]) == (200, "PROCESSING")
    callbacks = receiver.wait_for(channel, 2)
    result = sdk.callback(callbacks[1].headers, callbacks[1].body)
    assert result["event_type"] == "REFUND.SUCCESS"
    assert result["resource"]["amount"]["refund"] == 1200
    code, message = sdk.query_refund(out_refund_no=f"{out_trade_no}-r1")
    assert json.loads(message)["status"] == "SUCCESS"
    code, message = sdk.refund(
        out_refund_no=f"{out_trade_no}-r2",
        out_trade_no=out_trade_no,
        amount={"refund": 3801, "total": 5000, "currency": "CNY"},
    )
    assert (code, json.loads(message)["code"]) == (403, "NOT_ENOUGH")


def test_close_unpaid_order(wechat_sandbox, channel):
    base_url, keys = wechat_sandbox
    sdk = merchant_sdk(base_url, keys, notify_url="http://127.0.0.1:9/notify")
    out_trade_no = out_trade_no_for(channel)
    place_order(sdk, out_trade_no, 100)
    code, _ = sdk.close(out_trade_no=out_trade_no)
    assert code == 204
    assert json.loads(sdk.query(out_trade_no=out_trade_no)[1])["trade_state"] == "CLOSED"


def test_retries_until_acknowledged(wechat_sandbox, notify_receiver, channel):
    base_url, keys = wechat_sandbox
    receiver, receiver_url = notify_receiver
    receiver.answer_next(channel, (500, b'{"code":"FAIL"}'), (500, b'{"code":"FAIL"}'))
    sdk = merchant_sdk(base_url, keys, notify_url=f"{receiver_url}/notify/{channel}")
    out_trade_no = out_trade_no_for(channel)
    place_order(sdk, out_trade_no, 100)
    approve(base_url, out_trade_no)
    attempts = receiver.wait_for(channel, 3)
    assert len({json.loads(a.body)["id"] for a in attempts}) == 1
    assert all(sdk.callback(a.headers, a.body) for a in attempts)


def test_trade_bill_download(wechat_sandbox, notify_receiver, channel):
    base_url, keys = wechat_sandbox
    _receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys, notify_url=f"{receiver_url}/notify/{channel}")
    out_trade_no = out_trade_no_for(channel)
    place_order(sdk, out_trade_no, 2345)
    approve(base_url, out_trade_no)
    code, message = sdk.trade_bill(bill_date=datetime.now(BEIJING).strftime("%Y-%m-%d"))
    assert code == 200
    code, content = sdk.download_bill(json.loads(message)["download_url"])
    text = content.decode() if isinstance(content, bytes) else content
    assert code == 200
    assert any(out_trade_no in line and "`23.45" in line for line in text.splitlines())


def test_customs_identity_check_with_sdk_encryption(wechat_sandbox, notify_receiver, channel):
    base_url, keys = wechat_sandbox
    _receiver, receiver_url = notify_receiver
    sdk = merchant_sdk(base_url, keys, notify_url=f"{receiver_url}/notify/{channel}")
    out_trade_no = out_trade_no_for(channel)
    place_order(sdk, out_trade_no, 100)
    approve(base_url, out_trade_no)
    declared = {
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": out_trade_no,
        "customs": "SHANGHAI_ZS",
        "merchant_customs_no": "123456",
    }
    code, _ = sdk._core.request("/v3/global/customs/orders", method=RequestType.POST, data=declared)
    assert code == 200
    for cert_no, expected in (("310101199001011234", "SAME"), (MISMATCHED_CERT_NO, "DIFFERENT")):
        code, message = sdk._core.request(
            "/v3/global/customs/verify-certificate",
            method=RequestType.POST,
            cipher_data=True,
            data={
                **declared,
                "certificate_type": "IDCARD",
                "certificate_id": sdk._core.encrypt(cert_no),
                "certificate_name": sdk._core.encrypt("李四"),
            },
        )
        assert (code, json.loads(message)["verify_result"]) == (200, expected)
    assert httpx.get(f"{base_url}/_sandbox/pay/{out_trade_no}").status_code == 200
