"""WeChat Pay APIv3 wire details for the sandbox: request authentication, signed answers,
encrypted callback envelopes and the JSON shapes of transactions and refunds.

Kept apart from the route table so each piece can be read against the provider's documentation
without the web framework in the way.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar import Request, Response

from payments.adapters.wechatpay_crypto import AUTH_SCHEME, TIMESTAMP_TOLERANCE_SECONDS
from payments.sandbox.ledger import SandboxRefund, SandboxTrade, TradeState
from payments.signing import sign_sha256_rsa, verify_sha256_rsa

CHINA = timezone(timedelta(hours=8))
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


def rfc3339(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, CHINA).isoformat(timespec="seconds") if epoch else None


class SandboxSigner:
    """Holds the platform key and signs everything the sandbox says."""

    def __init__(self, platform_key: RSAPrivateKey, platform_key_id: str) -> None:
        self._key = platform_key
        self.key_id = platform_key_id

    def headers(self, body: bytes, *, late_by: int = 0, corrupt: bool = False) -> dict[str, str]:
        timestamp = str(int(time.time()) - late_by)
        nonce = secrets.token_hex(16).upper()
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = sign_sha256_rsa(self._key, message + (b"tampered" if corrupt else b""))
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": self.key_id,
            "Wechatpay-Signature-Type": AUTH_SCHEME,
            "Request-ID": uuid.uuid4().hex,
        }

    def respond(self, payload: dict[str, Any] | None, status_code: int = 200) -> Response[bytes]:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        return Response(
            body,
            status_code=status_code,
            headers=self.headers(body),
            media_type="application/json" if payload is not None else None,
        )

    def error(self, status_code: int, code: str, message: str) -> Response[bytes]:
        return self.respond({"code": code, "message": message}, status_code)


async def authenticate(
    request: Request, *, mchid: str, serial_no: str, merchant_key: RSAPublicKey
) -> tuple[bytes, str | None]:
    """Check the ``Authorization`` header over the raw request; returns (body, error text)."""
    body = await request.body()
    header = request.headers.get("authorization", "")
    scheme, _, rest = header.partition(" ")
    fields = dict(_AUTH_FIELD.findall(rest))
    if (
        scheme != AUTH_SCHEME
        or not {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} <= fields.keys()
    ):
        return body, "malformed Authorization header"
    if fields["mchid"] != mchid or fields["serial_no"] != serial_no:
        return body, "unknown mchid or merchant certificate serial"
    try:
        skew = abs(time.time() - int(fields["timestamp"]))
    except ValueError:
        return body, "bad timestamp"
    if skew > TIMESTAMP_TOLERANCE_SECONDS:
        return body, "timestamp outside the 5 minute window"
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string", b"")
    target = raw_path + (b"?" + query if query else b"")
    message = (
        f"{request.method}\n".encode()
        + target
        + b"\n"
        + f"{fields['timestamp']}\n{fields['nonce_str']}\n".encode()
        + body
        + b"\n"
    )
    if not verify_sha256_rsa(merchant_key, message, fields["signature"]):
        return body, "signature did not verify"
    return body, None


def trade_state(trade: SandboxTrade) -> str:
    if trade.state is TradeState.PAID:
        return "REFUND" if trade.refunds else "SUCCESS"
    return {
        TradeState.PENDING: "NOTPAY",
        TradeState.DECLINED: "PAYERROR",
        TradeState.CLOSED: "CLOSED",
    }[trade.state]


def transaction_json(trade: SandboxTrade, appid: str, mchid: str) -> dict[str, Any]:
    state = trade_state(trade)
    body: dict[str, Any] = {
        "appid": appid,
        "mchid": mchid,
        "out_trade_no": trade.out_trade_no,
        "trade_state": state,
        "trade_state_desc": {
            "SUCCESS": "支付成功",
            "REFUND": "转入退款",
            "NOTPAY": "未支付",
            "PAYERROR": "支付失败",
            "CLOSED": "已关闭",
        }[state],
        "attach": trade.extra.get("attach", ""),
        "amount": {"total": trade.amount_minor, "currency": trade.currency},
    }
    if trade.paid_at:
        body.update(
            transaction_id=trade.provider_ref,
            trade_type="NATIVE",
            bank_type="OTHERS",
            success_time=rfc3339(trade.paid_at),
            payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        )
        body["amount"].update(payer_total=trade.amount_minor, payer_currency=trade.currency)
    return body


def refund_json(trade: SandboxTrade, refund: SandboxRefund, status: str) -> dict[str, Any]:
    return {
        "refund_id": refund.refund_ref,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.provider_ref,
        "out_trade_no": trade.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(refund.created_at),
        "success_time": rfc3339(time.time()) if status == "SUCCESS" else None,
        "status": status,
        "amount": {
            "total": trade.amount_minor,
            "refund": refund.amount_minor,
            "payer_total": trade.amount_minor,
            "payer_refund": refund.amount_minor,
            "currency": trade.currency,
        },
    }


def encrypted_envelope(
    event_type: str, summary: str, original_type: str, resource: dict[str, Any], apiv3_key: str
) -> str:
    """The callback body: resource encrypted with AEAD_AES_256_GCM under the APIv3 key."""
    nonce = secrets.token_hex(6)  # 12 ASCII characters, used as the 12-byte GCM nonce
    associated_data = original_type
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(),
        json.dumps(resource, ensure_ascii=False).encode(),
        associated_data.encode(),
    )
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "create_time": rfc3339(time.time()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": associated_data,
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    )
