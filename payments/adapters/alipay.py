"""Alipay OpenAPI (``gateway.do``) dialect of the payment gateway port.

Why it looks like this:

* Requests are signed SHA256withRSA ("RSA2") over every parameter except ``sign``, sorted by
  key and joined as ``k=v&…`` with *unencoded* values; only the wire form is URL-encoded.
* Responses carry ``{"<method>_response": {...}, "sign": "…"}`` and the signature covers the exact
  text of the inner object, so we cut that text out of the raw body instead of re-serialising.
* Async notifications are forms; ``sign`` *and* ``sign_type`` are excluded from the signed string.
  The merchant must answer the seven bytes ``success`` or Alipay keeps resending.
* Amounts are decimal yuan strings on the wire. They are converted here and nowhere else.
* Daily bills are CSV files with Chinese headers behind a download URL; read by header name.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

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
from payments.signing import load_private_key, load_public_key, sign_sha256_rsa, verify_sha256_rsa

# Alipay timestamps are Beijing wall-clock time without a zone marker.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
SUCCESS_CODE = "10000"

TRADE_STATUS_MAP = {
    "WAIT_BUYER_PAY": PaymentStatus.PENDING,
    "TRADE_SUCCESS": PaymentStatus.SUCCEEDED,
    "TRADE_FINISHED": PaymentStatus.SUCCEEDED,
    "TRADE_CLOSED": PaymentStatus.CLOSED,
}


def minor_to_yuan(amount_minor: int) -> str:
    """8800 -> "88.00". Integer arithmetic only, so no float ever touches money."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 0:
        raise ValueError("amount must be a non-negative int of fen")
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def yuan_to_minor(amount_yuan: str) -> int:
    """ "88.00" / "88.5" / "88" -> fen; rejects more than two decimals rather than rounding."""
    try:
        value = Decimal(amount_yuan)
    except InvalidOperation as exc:
        raise ValueError(f"not a yuan amount: {amount_yuan!r}") from exc
    fen = value * 100
    if not value.is_finite() or fen != fen.to_integral_value() or value < 0:
        raise ValueError(f"not a yuan amount: {amount_yuan!r}")
    return int(fen)


def signing_string(params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """Sorted ``k=v&…`` of non-empty params, values unencoded: the Alipay signed content."""
    items = sorted((k, v) for k, v in params.items() if k not in exclude and v not in ("", None))
    return "&".join(f"{k}={v}" for k, v in items)


def extract_signed_response(raw_text: str, response_key: str) -> str:
    """Return the exact JSON text of ``response_key``'s value, as Alipay signed it.

    Uses the JSON decoder to find where the object ends, so braces inside string values cannot
    confuse the cut the way naive brace counting can.
    """
    marker = raw_text.find(f'"{response_key}"')
    if marker < 0:
        raise BadSignature(f"response has no {response_key}")
    start = raw_text.index("{", marker + len(response_key) + 2)
    _, end = json.JSONDecoder().raw_decode(raw_text, start)
    return raw_text[start:end]


class AlipayGateway:
    """Merchant-side client for Alipay OpenAPI; one instance per app id."""

    provider = "alipay"

    def __init__(
        self,
        *,
        gateway_url: str,
        app_id: str,
        merchant_private_key: str,
        alipay_public_key: str,
        http: httpx.AsyncClient | None = None,
        notify_max_age: timedelta = timedelta(minutes=15),
        replay_guard: NotificationReplayGuard | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._gateway_url = gateway_url
        self._app_id = app_id
        self._private_key = load_private_key(merchant_private_key)
        self._alipay_key = load_public_key(alipay_public_key)
        self._http = http or httpx.AsyncClient(timeout=15.0)
        self._notify_max_age = notify_max_age
        self._replay_guard = replay_guard or InMemoryReplayGuard()
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        return f"AlipayGateway(app_id={self._app_id!r}, gateway_url={self._gateway_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, biz_content: Mapping[str, Any], **extra: str
    ) -> dict[str, Any]:
        params = {
            "app_id": self._app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": self._clock().astimezone(BEIJING).strftime(TIMESTAMP_FORMAT),
            "version": "1.0",
            "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
            **{k: v for k, v in extra.items() if v},
        }
        params["sign"] = sign_sha256_rsa(self._private_key, signing_string(params).encode())
        response = await self._http.post(
            self._gateway_url,
            content=urllib.parse.urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        )
        response.raise_for_status()
        raw_text = response.text
        response_key = method.replace(".", "_") + "_response"
        if f'"{response_key}"' not in raw_text and '"error_response"' in raw_text:
            response_key = "error_response"
        signed_text = extract_signed_response(raw_text, response_key)
        signature = json.loads(raw_text).get("sign")
        if not signature or not verify_sha256_rsa(
            self._alipay_key, signed_text.encode(), signature
        ):
            raise BadSignature(f"{method} response signature did not verify")
        body: dict[str, Any] = json.loads(signed_text)
        if body.get("code") != SUCCESS_CODE:
            raise ProviderRejected(
                str(body.get("code")),
                str(body.get("sub_msg") or body.get("msg")),
                sub_code=body.get("sub_code"),
            )
        return body

    async def create_payment(self, command: CreatePayment) -> PaymentStarted:
        """``alipay.trade.precreate``: the buyer scans the returned QR code with Alipay."""
        if command.method != "alipay":
            raise ValueError("the Alipay gateway only takes method='alipay'")
        body = await self._call(
            "alipay.trade.precreate",
            {
                "out_trade_no": command.out_trade_no,
                "total_amount": minor_to_yuan(_cny(command.amount_minor, command.currency)),
                "subject": command.subject,
            },
            notify_url=command.notify_url or "",
        )
        return PaymentStarted(
            out_trade_no=body["out_trade_no"],
            status=PaymentStatus.PENDING,
            next_action=DisplayQrCode(body["qr_code"]),
            raw=body,
        )

    async def query_payment(self, out_trade_no: str) -> PaymentState:
        body = await self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        return PaymentState(
            out_trade_no=body["out_trade_no"],
            status=TRADE_STATUS_MAP[body["trade_status"]],
            amount_minor=yuan_to_minor(body["total_amount"]),
            currency="CNY",
            provider_payment_ref=body.get("trade_no"),
            raw=body,
        )

    async def close_payment(self, out_trade_no: str) -> None:
        await self._call("alipay.trade.close", {"out_trade_no": out_trade_no})

    async def refund(self, command: RefundPayment) -> RefundResult:
        """``alipay.trade.refund``; ``out_request_no`` makes retries of one refund idempotent."""
        body = await self._call(
            "alipay.trade.refund",
            {
                "out_trade_no": command.out_trade_no,
                "refund_amount": minor_to_yuan(_cny(command.refund_minor, command.currency)),
                "out_request_no": command.out_refund_no,
                **({"refund_reason": command.reason} if command.reason else {}),
            },
        )
        succeeded = body.get("fund_change") == "Y" or "refund_fee" in body
        return RefundResult(
            out_refund_no=command.out_refund_no,
            status=RefundStatus.SUCCEEDED if succeeded else RefundStatus.PENDING,
            refund_minor=command.refund_minor,
            currency="CNY",
            provider_refund_ref=body.get("trade_no"),
            raw=body,
        )

    async def declare_customs(self, command: DeclareCustoms) -> CustomsDeclarationResult:
        """``alipay.trade.customs.declare``: push the payment record and buyer identity."""
        body = await self._call(
            "alipay.trade.customs.declare",
            {
                "out_request_no": command.out_request_no,
                "out_trade_no": command.out_trade_no,
                "merchant_customs_code": command.merchant_customs_no,
                "merchant_customs_name": command.merchant_customs_name,
                "amount": minor_to_yuan(_cny(command.amount_minor, command.currency)),
                "customs_place": command.customs_code,
                "buyer_info": {
                    "buyer_name": command.payer_name,
                    "buyer_cert_no": command.payer_id_number,
                },
            },
        )
        check = {"T": IdentityCheck.MATCH, "F": IdentityCheck.MISMATCH}
        return CustomsDeclarationResult(
            out_request_no=command.out_request_no,
            declaration_ref=body["alipay_declare_no"],
            identity_check=check.get(body.get("identity_check", ""), IdentityCheck.UNCHECKED),
            raw=body,
        )

    async def fetch_daily_bill(self, bill_date: date) -> list[BillLine]:
        """``alipay.data.dataservice.bill.downloadurl.query`` (trade bill), then the file itself."""
        body = await self._call(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": bill_date.isoformat()},
        )
        response = await self._http.get(body["bill_download_url"])
        response.raise_for_status()
        return parse_trade_bill(response.content)

    def parse_notification(
        self, headers: Mapping[str, str], raw_body: bytes
    ) -> PaymentNotification:
        """Verify an async notify form; ``headers`` are unused (the signature is in the form)."""
        fields = dict(urllib.parse.parse_qsl(raw_body.decode(), keep_blank_values=True))
        signature = fields.get("sign", "")
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise BadSignature("only RSA2 notifications are accepted")
        signed = signing_string(fields, exclude=("sign", "sign_type")).encode()
        if not signature or not verify_sha256_rsa(self._alipay_key, signed, signature):
            raise BadSignature("notification signature did not verify")
        if fields.get("app_id") != self._app_id:
            raise BadSignature("notification is for another app_id")
        try:
            sent_at = datetime.strptime(fields["notify_time"], TIMESTAMP_FORMAT)
        except (KeyError, ValueError) as exc:
            raise StaleNotification("notification has no usable notify_time") from exc
        age = self._clock() - sent_at.replace(tzinfo=BEIJING)
        if abs(age) > self._notify_max_age:
            raise StaleNotification(f"notify_time is {age} away from now")
        if not self._replay_guard.first_sighting(message_fingerprint("alipay", signature)):
            raise ReplayedNotification(f"notify {fields.get('notify_id')} was already accepted")
        is_refund = bool(fields.get("out_biz_no")) or bool(fields.get("gmt_refund"))
        return PaymentNotification(
            provider=self.provider,
            provider_event_id=fields["notify_id"],
            kind=NotificationKind.REFUND if is_refund else NotificationKind.PAYMENT,
            out_trade_no=fields["out_trade_no"],
            status=TRADE_STATUS_MAP[fields["trade_status"]],
            amount_minor=yuan_to_minor(fields["total_amount"]),
            currency="CNY",
            raw=fields,
            out_refund_no=fields.get("out_biz_no") or None,
            refund_minor=yuan_to_minor(fields["refund_fee"]) if fields.get("refund_fee") else None,
        )

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """Exactly ``success`` (no whitespace, no HTML); anything else makes Alipay resend."""
        return Acknowledgement(200, b"success" if accepted else b"fail", "text/plain")


def parse_trade_bill(content: bytes) -> list[BillLine]:
    """业务明细 rows of 交易 (payment) or 退款 (refund), read by header name. The real gateway
    serves a zip of GBK files with ``#`` comment lines; the sandbox, plain UTF-8."""
    if content.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for info in archive.infolist():  # names are GBK unless flagged UTF-8 (bit 11)
                gbk_name = info.filename.encode("cp437", "replace")
                if "汇总" not in info.filename and "汇总".encode("gb18030") not in gbk_name:
                    content = archive.read(info)
                    break
            else:
                content = b""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("gb18030")
    kinds = {"交易": NotificationKind.PAYMENT, "退款": NotificationKind.REFUND}
    bill = []
    for raw in csv.DictReader(line for line in text.splitlines() if line and line[0] != "#"):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        if (kind := kinds.get(row.get("业务类型", ""))) is None:
            continue
        try:
            amount = yuan_to_minor(row["订单金额（元）"].lstrip("-"))  # refunds may be negative
            out_trade_no = row["商户订单号"]
        except (KeyError, ValueError) as exc:
            raise PaymentGatewayError(f"unreadable Alipay bill line: {exc}") from exc
        refund_no, ref = row.get("退款批次号/请求号") or None, row.get("支付宝交易号") or None
        bill.append(BillLine(out_trade_no, kind, amount, row.get("币种") or "CNY", refund_no, ref))
    return bill


def _cny(amount_minor: int, currency: str) -> int:
    if currency != "CNY":
        raise ValueError("Alipay OpenAPI trades are settled in CNY only")
    return amount_minor
