"""Stripe dialect of the payment gateway port: PaymentIntents over Stripe's v1 wire protocol.

Why it looks like this:

* Bodies are ``application/x-www-form-urlencoded`` with bracket notation (``metadata[order_id]``,
  ``payment_method_types[0]``). We encode them ourselves because httpx 0.28 refuses lists of pairs.
* Every POST carries an ``Idempotency-Key`` derived from the command (``out_trade_no``,
  ``out_refund_no``), so a retried command replays Stripe's saved answer instead of charging twice.
* ``Stripe-Version`` is pinned so Stripe's API upgrades never change our response shapes silently.
* Webhooks are verified on the raw bytes: HMAC-SHA256 over ``"{t}.{payload}"``, any ``v1`` may
  match (secrets roll), and ``t`` must be within 300 s.
* Wallet-only parameters (``payment_method_data``, ``return_url``, ``payment_method_options``) sit
  behind ``confirm_wallets`` so the same adapter runs against localstripe, which rejects them.

For Stripe the provider's reference is the PaymentIntent id: pass it wherever the port says
``out_trade_no`` for query/close/refund. Our ``out_trade_no`` travels in ``metadata``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from payments.port import (
    Acknowledgement,
    BadSignature,
    CreatePayment,
    CustomsDeclarationResult,
    DeclareCustoms,
    DisplayQrCode,
    InMemoryReplayGuard,
    NextAction,
    NotificationKind,
    NotificationReplayGuard,
    PaymentNotification,
    PaymentStarted,
    PaymentState,
    PaymentStatus,
    ProviderRejected,
    RedirectToUrl,
    RefundPayment,
    RefundResult,
    RefundStatus,
    ReplayedNotification,
    StaleNotification,
    UnsupportedOperation,
    message_fingerprint,
)

STRIPE_API_VERSION = "2026-10-28.endive"  # what stripe-python 16.1.0 pins
WEBHOOK_TOLERANCE_SECONDS = 300

INTENT_STATUS_MAP = {
    "requires_payment_method": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.PENDING,
    "processing": PaymentStatus.PENDING,
    "requires_capture": PaymentStatus.REQUIRES_CAPTURE,
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CLOSED,
}
REFUND_STATUS_MAP = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}


def form_pairs(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested dicts/lists into Stripe's bracket notation, in insertion order."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(form_pairs(value, name))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs.extend(form_pairs(item, f"{name}[{index}]"))
                else:
                    pairs.append((f"{name}[{index}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def next_action_of(intent: Mapping[str, Any]) -> NextAction | None:
    """Map Stripe's ``next_action`` to the port's redirect / QR actions."""
    action = intent.get("next_action") or {}
    kind = action.get("type")
    if kind == "alipay_handle_redirect":
        return RedirectToUrl(action["alipay_handle_redirect"]["url"])
    if kind == "wechat_pay_display_qr_code":
        return DisplayQrCode(action["wechat_pay_display_qr_code"]["data"])
    if kind == "redirect_to_url":
        return RedirectToUrl(action["redirect_to_url"]["url"])
    return None


def verify_stripe_signature(
    raw_body: bytes, header: str, secret: str, *, now: float, tolerance: int
) -> None:
    """Raise BadSignature unless some ``v1`` matches; StaleNotification if ``t`` is too old."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise BadSignature("Stripe-Signature has a malformed timestamp") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise BadSignature("Stripe-Signature lacks t or v1")
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise BadSignature("no v1 signature matches")
    if now - timestamp > tolerance:
        raise StaleNotification(f"Stripe-Signature timestamp is {now - timestamp:.0f} s old")


class StripeGateway:
    provider = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        base_url: str = "https://api.stripe.com",
        api_version: str = STRIPE_API_VERSION,
        confirm_wallets: bool = True,
        http: httpx.AsyncClient | None = None,
        replay_guard: NotificationReplayGuard | None = None,
        clock: Callable[[], float] = time.time,
        tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
    ) -> None:
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._base_url = base_url.rstrip("/")
        self._api_version = api_version
        self._confirm_wallets = confirm_wallets
        self._http = http or httpx.AsyncClient(timeout=30.0)
        self._replay_guard = replay_guard or InMemoryReplayGuard()
        self._clock = clock
        self._tolerance = tolerance

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        return f"StripeGateway(base_url={self._base_url!r}, api_version={self._api_version!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Stripe-Version": self._api_version,
        }
        content = b""
        if method == "POST":
            if not idempotency_key:
                raise ValueError("every Stripe POST needs an idempotency key")
            headers["Idempotency-Key"] = idempotency_key
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urllib.parse.urlencode(form_pairs(params or {})).encode()
        response = await self._http.request(
            method, self._base_url + path, content=content or None, headers=headers
        )
        body: dict[str, Any] = response.json()
        if response.is_error:
            error = body.get("error") or {}
            raise ProviderRejected(
                str(error.get("code") or error.get("type") or response.status_code),
                str(error.get("message", "")),
                sub_code=error.get("decline_code"),
            )
        return body

    async def create_payment(self, command: CreatePayment) -> PaymentStarted:
        params: dict[str, Any] = {
            "amount": command.amount_minor,
            "currency": command.currency.lower(),
            "payment_method_types": [command.method],
            "metadata": {"order_id": command.order_id, "out_trade_no": command.out_trade_no},
        }
        if command.capture_manually:
            params["capture_method"] = "manual"
        if command.payment_method_ref:
            params.update(payment_method=command.payment_method_ref, confirm=True)
        elif command.method != "card" and self._confirm_wallets:
            params.update(
                confirm=True,
                payment_method_data={"type": command.method},
                return_url=command.return_url,
            )
            if command.method == "wechat_pay":
                params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
        intent = await self._call(
            "POST", "/v1/payment_intents", params, idempotency_key=command.out_trade_no
        )
        return PaymentStarted(
            out_trade_no=command.out_trade_no,
            status=INTENT_STATUS_MAP[intent["status"]],
            next_action=next_action_of(intent),
            provider_payment_ref=intent["id"],
            raw=intent,
        )

    def _state(self, intent: Mapping[str, Any]) -> PaymentState:
        return PaymentState(
            out_trade_no=(intent.get("metadata") or {}).get("out_trade_no", intent["id"]),
            status=INTENT_STATUS_MAP[intent["status"]],
            amount_minor=int(intent["amount"]),
            currency=str(intent["currency"]).upper(),
            provider_payment_ref=intent["id"],
            raw=intent,
        )

    async def query_payment(self, out_trade_no: str) -> PaymentState:
        """``out_trade_no`` is the PaymentIntent id here (see module docstring)."""
        return self._state(await self._call("GET", f"/v1/payment_intents/{out_trade_no}"))

    async def capture(
        self, payment_intent_id: str, amount_minor: int | None = None
    ) -> PaymentState:
        params = {"amount_to_capture": amount_minor} if amount_minor is not None else {}
        intent = await self._call(
            "POST",
            f"/v1/payment_intents/{payment_intent_id}/capture",
            params,
            idempotency_key=f"{payment_intent_id}/capture/{amount_minor}",
        )
        return self._state(intent)

    async def close_payment(self, out_trade_no: str) -> None:
        await self._call(
            "POST",
            f"/v1/payment_intents/{out_trade_no}/cancel",
            {},
            idempotency_key=f"{out_trade_no}/cancel",
        )

    async def refund(self, command: RefundPayment) -> RefundResult:
        refund = await self._call(
            "POST",
            "/v1/refunds",
            {
                "payment_intent": command.out_trade_no,
                "amount": command.refund_minor,
                "metadata": {"out_refund_no": command.out_refund_no},
            },
            idempotency_key=command.out_refund_no,
        )
        return RefundResult(
            out_refund_no=command.out_refund_no,
            status=REFUND_STATUS_MAP.get(refund.get("status", ""), RefundStatus.PENDING),
            refund_minor=int(refund["amount"]),
            currency=str(refund["currency"]).upper(),
            provider_refund_ref=refund["id"],
            raw=refund,
        )

    async def declare_customs(self, command: DeclareCustoms) -> CustomsDeclarationResult:
        raise UnsupportedOperation("Stripe does not file Chinese customs payment declarations")

    def parse_notification(
        self, headers: Mapping[str, str], raw_body: bytes
    ) -> PaymentNotification:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get("stripe-signature", "")
        verify_stripe_signature(
            raw_body, header, self._webhook_secret, now=self._clock(), tolerance=self._tolerance
        )
        if not self._replay_guard.first_sighting(message_fingerprint("stripe", header)):
            raise ReplayedNotification("this signed webhook was already accepted")
        event = json.loads(raw_body)
        obj = event["data"]["object"]
        metadata = obj.get("metadata") or {}
        if obj.get("object") == "charge" and event["type"].startswith("charge.refund"):
            return PaymentNotification(
                provider=self.provider,
                provider_event_id=event["id"],
                kind=NotificationKind.REFUND,
                out_trade_no=metadata.get("out_trade_no") or obj.get("payment_intent", ""),
                status=PaymentStatus.REFUNDED,
                amount_minor=int(obj["amount"]),
                currency=str(obj["currency"]).upper(),
                raw=event,
                refund_minor=int(obj.get("amount_refunded", 0)),
            )
        status = INTENT_STATUS_MAP.get(obj.get("status", ""), PaymentStatus.PENDING)
        if event["type"] == "payment_intent.payment_failed":
            status = PaymentStatus.FAILED
        return PaymentNotification(
            provider=self.provider,
            provider_event_id=event["id"],
            kind=NotificationKind.PAYMENT,
            out_trade_no=metadata.get("out_trade_no") or obj["id"],
            status=status,
            amount_minor=int(obj["amount"]),
            currency=str(obj["currency"]).upper(),
            raw=event,
        )

    def acknowledgement(self, accepted: bool) -> Acknowledgement:
        """Any 2xx stops Stripe's retries; a 400 asks for a resend."""
        return Acknowledgement(200 if accepted else 400, b"", None)
