"""WeChat Pay APIv3 dialect of the payment gateway port (platform-public-key mode).

Why it looks like this:

* Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
  signature=…,timestamp=…,serial_no=…`` where the signature covers
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``. The body is serialised once and the same
  bytes are signed and sent.
* Responses and callbacks are signed by the platform over ``TIMESTAMP\\nNONCE\\nBODY\\n``;
  the ``Wechatpay-Serial`` header names the key, and timestamps more than five minutes off are
  refused because a valid signature alone does not prove freshness.
* Callback payloads are AEAD_AES_256_GCM-encrypted with the merchant's APIv3 key.
* Amounts are integer fen already, so no conversion happens here, except in daily bills: a
  backtick-prefixed CSV of yuan, downloaded with a signed GET and checked against its SHA1.
"""

from __future__ import annotations

import csv
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import httpx

from payments.adapters.alipay import yuan_to_minor  # bills show yuan, as Alipay's API does
from payments.adapters.wechatpay_crypto import (
    AUTH_SCHEME,
    TIMESTAMP_TOLERANCE_SECONDS,
    authorization_header,
    decrypt_resource,
    encrypt_sensitive,
)
from payments.port import (
    Acknowledgement,
    BadSignature,
    BillLine,
    CreatePayment,
    CustomsDeclarationResult,
    DeclareCustoms,
    DisplayQrCode,
    IdentityCheck,
    InMemoryReplayGuard,
    NotificationKind,
    NotificationReplayGuard,
    PaymentGatewayError,
    PaymentNotification,
    PaymentStarted,
    PaymentState,
    PaymentStatus,
    ProviderRejected,
    RefundPayment,
    RefundResult,
    RefundStatus,
    ReplayedNotification,
    StaleNotification,
    message_fingerprint,
)
from payments.signing import load_private_key, load_public_key, verify_sha256_rsa

TRADE_STATE_MAP = {
    "SUCCESS": PaymentStatus.SUCCEEDED,
    "REFUND": PaymentStatus.REFUNDED,
    "NOTPAY": PaymentStatus.PENDING,
    "USERPAYING": PaymentStatus.PENDING,
    "CLOSED": PaymentStatus.CLOSED,
    "REVOKED": PaymentStatus.CLOSED,
    "PAYERROR": PaymentStatus.FAILED,
}
REFUND_STATUS_MAP = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "PROCESSING": RefundStatus.PENDING,
    "CLOSED": RefundStatus.FAILED,
    "ABNORMAL": RefundStatus.FAILED,
}


class WeChatPayGateway:
    """Merchant-side client for WeChat Pay APIv3 Native payments."""

    provider = "wechatpay"

    def __init__(
        self,
        *,
        base_url: str,
        mchid: str,
        appid: str,
        merchant_private_key: str,
        merchant_serial_no: str,
        platform_public_key: str,
        platform_public_key_id: str,
        apiv3_key: str,
        http: httpx.AsyncClient | None = None,
        replay_guard: NotificationReplayGuard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")
        self._base_url = base_url.rstrip("/")
        self._mchid = mchid
        self._appid = appid
        self._private_key = load_private_key(merchant_private_key)
        self._serial_no = merchant_serial_no
        self._platform_key = load_public_key(platform_public_key)
        self._platform_key_id = platform_public_key_id
        self._apiv3_key = apiv3_key
        self._http = http or httpx.AsyncClient(timeout=15.0)
        self._replay_guard = replay_guard or InMemoryReplayGuard()
        self._clock = clock

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        return f"WeChatPayGateway(mchid={self._mchid!r}, base_url={self._base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def verify_signed_message(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check a platform-signed response or callback; raises BadSignature/StaleNotification."""
        lowered = {k.lower(): v for k, v in headers.items()}
        timestamp = lowered.get("wechatpay-timestamp", "")
        nonce = lowered.get("wechatpay-nonce", "")
        signature = lowered.get("wechatpay-signature", "")
        if lowered.get("wechatpay-signature-type", AUTH_SCHEME) != AUTH_SCHEME:
            raise BadSignature("unsupported Wechatpay-Signature-Type")
        if lowered.get("wechatpay-serial") != self._platform_key_id:
            raise BadSignature("Wechatpay-Serial names a key we do not hold")
        message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        if not signature or not verify_sha256_rsa(self._platform_key, message, signature):
            raise BadSignature("platform signature did not verify")
        try:
            skew = abs(self._clock() - int(timestamp))
        except ValueError as exc:
            raise StaleNotification("Wechatpay-Timestamp is not an integer") from exc
        if skew > TIMESTAMP_TOLERANCE_SECONDS:
            raise StaleNotification(f"Wechatpay-Timestamp is {skew:.0f} s away from now")

    async def _send(
        self,
        method: str,
        path_with_query: str,
        body: str = "",
        *,
        url: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Sign and send; ``url`` overrides base URL + path (bill downloads name their own)."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": authorization_header(
                method=method,
                path_with_query=path_with_query,
                body=body,
                mchid=self._mchid,
                serial_no=self._serial_no,
                private_key=self._private_key,
                timestamp=int(self._clock()),
                nonce=secrets.token_hex(16).upper(),
            ),
            **(extra_headers or {}),
        }
        response = await self._http.request(
            method, url or self._base_url + path_with_query, content=body.encode(), headers=headers
        )
        if not response.is_success:
            try:
                error = response.json()
            except ValueError:
                error = {}
            raise ProviderRejected(
                str(error.get("code", response.status_code)), str(error.get("message", ""))
            )
        return response

    async def _request(
        self,
        method: str,
        path_with_query: str,
        payload: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Signed request whose answer must carry a valid platform signature."""
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        response = await self._send(method, path_with_query, body, extra_headers=extra_headers)
        self.verify_signed_message(response.headers, response.content)
        return response.json() if response.content else {}

    async def create_payment(self, command: CreatePayment) -> PaymentStarted:
        """Native order: the buyer scans ``code_url`` with WeChat."""
        if command.method != "wechat_pay":
            raise ValueError("the WeChat Pay gateway only takes method='wechat_pay'")
        body = await self._request(
            "POST",
            "/v3/pay/transactions/native",
            {
                "appid": self._appid,
                "mchid": self._mchid,
                "description": command.subject,
                "out_trade_no": command.out_trade_no,
                "notify_url": command.notify_url,
                "amount": {"total": command.amount_minor, "currency": command.currency},
                "attach": command.order_id,
            },
        )
        return PaymentStarted(
            out_trade_no=command.out_trade_no,
            status=PaymentStatus.PENDING,
            next_action=DisplayQrCode(body["code_url"]),
            raw=body,
        )

    async def query_payment(self, out_trade_no: str) -> PaymentState:
        body = await self._request(
            "GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self._mchid}"
        )
        return PaymentState(
            out_trade_no=body["out_trade_no"],
            status=TRADE_STATE_MAP[body["trade_state"]],
            amount_minor=int(body["amount"]["total"]),
            currency=body["amount"].get("currency", "CNY"),
            provider_payment_ref=body.get("transaction_id"),
            raw=body,
        )

    async def close_payment(self, out_trade_no: str) -> None:
        await self._request(
            "POST",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            {"mchid": self._mchid},
        )

    async def refund(self, command: RefundPayment) -> RefundResult:
        body = await self._request(
            "POST",
            "/v3/refund/domestic/refunds",
            {
                "out_trade_no": command.out_trade_no,
                "out_refund_no": command.out_refund_no,
                "amount": {
                    "refund": command.refund_minor,
                    "total": command.payment_total_minor,
                    "currency": command.currency,
                },
                **({"reason": command.reason} if command.reason else {}),
            },
        )
        return RefundResult(
            out_refund_no=body["out_refund_no"],
            status=REFUND_STATUS_MAP.get(body.get("status", ""), RefundStatus.PENDING),
            refund_minor=int(body["amount"]["refund"]),
            currency=body["amount"].get("currency", command.currency),
            provider_refund_ref=body.get("refund_id"),
            raw=body,
        )

    async def declare_customs(self, command: DeclareCustoms) -> CustomsDeclarationResult:
        """Declare the payment, then ask whether the registered payer is the declared buyer."""
        query = await self.query_payment(command.out_trade_no)
        declared = await self._request(
            "POST",
            "/v3/global/customs/orders",
            {
                "appid": self._appid,
                "mchid": self._mchid,
                "out_trade_no": command.out_trade_no,
                "transaction_id": query.provider_payment_ref,
                "customs": command.customs_code,
                "merchant_customs_no": command.merchant_customs_no,
                "sub_order_no": command.order_no,
                "fee_type": command.currency,
                "order_fee": command.amount_minor,
            },
        )
        verified = await self._request(
            "POST",
            "/v3/global/customs/verify-certificate",
            {
                "appid": self._appid,
                "mchid": self._mchid,
                "out_trade_no": command.out_trade_no,
                "transaction_id": query.provider_payment_ref,
                "sub_order_no": command.order_no,
                "customs": command.customs_code,
                "merchant_customs_no": command.merchant_customs_no,
                "certificate_type": "IDCARD",
                "certificate_id": encrypt_sensitive(self._platform_key, command.payer_id_number),
                "certificate_name": encrypt_sensitive(self._platform_key, command.payer_name),
            },
            extra_headers={"Wechatpay-Serial": self._platform_key_id},
        )
        check = {"SAME": IdentityCheck.MATCH, "DIFFERENT": IdentityCheck.MISMATCH}
        return CustomsDeclarationResult(
            out_request_no=command.out_request_no,
            declaration_ref=str(declared.get("sub_order_id") or declared.get("transaction_id")),
            identity_check=check.get(verified.get("verify_result", ""), IdentityCheck.UNCHECKED),
            raw={"declaration": declared, "verification": verified},
        )

    async def fetch_daily_bill(self, bill_date: date) -> list[BillLine]:
        """Signed ``GET /v3/bill/tradebill``, then a signed GET of its ``download_url``. The file
        itself is unsigned: it must match the SHA1 ``hash_value`` of the signed answer."""
        answer = await self._request("GET", f"/v3/bill/tradebill?bill_date={bill_date}")
        url = httpx.URL(answer["download_url"])
        file = await self._send("GET", url.raw_path.decode(), url=str(url))
        digest = hashlib.sha1(file.content, usedforsecurity=False).hexdigest()
        if digest != str(answer.get("hash_value", "")).lower():
            raise BadSignature("trade bill does not match the signed hash_value")
        return parse_trade_bill(file.content.decode("utf-8-sig"))

    def parse_notification(
        self, headers: Mapping[str, str], raw_body: bytes
    ) -> PaymentNotification:
        """Verify headers over the raw bytes, refuse stale or replayed ones, then decrypt."""
        self.verify_signed_message(headers, raw_body)
        signature = {k.lower(): v for k, v in headers.items()}["wechatpay-signature"]
        if not self._replay_guard.first_sighting(message_fingerprint("wechatpay", signature)):
            raise ReplayedNotification("this signed notification was already accepted")
        envelope = json.loads(raw_body)
        resource = decrypt_resource(envelope.get("resource") or {}, self._apiv3_key)
        event_type = envelope.get("event_type", "")
        amount = resource.get("amount") or {}
        if event_type.startswith("REFUND."):
            return PaymentNotification(
                provider=self.provider,
                provider_event_id=envelope["id"],
                kind=NotificationKind.REFUND,
                out_trade_no=resource["out_trade_no"],
                status=PaymentStatus.REFUNDED,
                amount_minor=int(amount["total"]),
                currency=amount.get("currency", "CNY"),
                raw={**envelope, "resource": resource},
                out_refund_no=resource.get("out_refund_no"),
                refund_minor=int(amount["refund"]),
            )
        return PaymentNotification(
            provider=self.provider,
            provider_event_id=envelope["id"],
            kind=NotificationKind.PAYMENT,
            out_trade_no=resource["out_trade_no"],
            status=TRADE_STATE_MAP[resource["trade_state"]],
            amount_minor=int(amount["total"]),
            currency=amount.get("currency", "CNY"),
            raw={**envelope, "resource": resource},
        )

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """204 with no body on success; a 4xx with the FAIL envelope makes WeChat resend."""
        if accepted:
            return Acknowledgement(204, b"", None)
        return Acknowledgement(
            400, json.dumps({"code": "FAIL", "message": "失败"}).encode(), "application/json"
        )


def parse_trade_bill(text: str) -> list[BillLine]:
    """Rows before the 总交易单数 summary, values backtick-prefixed, amounts in yuan: 金额 (the
    sandbox) or 应结订单金额 / 退款金额 (the real layout). Only SUCCESS and REFUND move money."""
    bill = []
    for raw in csv.DictReader(text.splitlines()):
        row = {k.strip(): (v or "").strip().lstrip("`") for k, v in raw.items() if k}
        if row.get("交易时间", "").startswith("总"):
            break
        if (state := row.get("交易状态")) not in ("SUCCESS", "REFUND"):
            continue
        kind = NotificationKind.REFUND if state == "REFUND" else NotificationKind.PAYMENT
        yuan = row.get("金额") or row.get("退款金额" if kind == "refund" else "应结订单金额", "")
        try:
            amount, out_trade_no = yuan_to_minor(yuan.lstrip("-")), row["商户订单号"]
        except (KeyError, ValueError) as exc:
            raise PaymentGatewayError(f"unreadable WeChat Pay bill line: {exc}") from exc
        refund_no = row.get("商户退款单号") if kind == "refund" else None
        ref = row.get("微信订单号/退款单号") or row.get(
            "微信退款单号" if refund_no else "微信订单号"
        )
        bill.append(
            BillLine(out_trade_no, kind, amount, row.get("货币种类") or "CNY", refund_no, ref)
        )
    return bill
