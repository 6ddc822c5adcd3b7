"""The payment gateway port: what the order side may ask of any provider, in provider-neutral terms.

Everything here speaks integer minor units (fen for CNY, cents for USD). Provider dialects, such as
Alipay's decimal yuan strings, stay inside the adapters. Merchant-side references
(``out_trade_no``, ``out_refund_no``) are derived deterministically from the order, so a retried
command reuses the same reference and the provider's own de-duplication makes it idempotent.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

PaymentMethod = Literal["alipay", "wechat_pay", "card"]
PAYMENT_METHODS: tuple[PaymentMethod, ...] = ("alipay", "wechat_pay", "card")

# A fixed namespace so the same order always maps to the same provider reference, on every host.
_REFERENCE_NAMESPACE = uuid.UUID("6f1d7c1e-5b0e-4f57-9a53-2a4b1c9e0d11")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def require_minor_units(amount: object, *, what: str = "amount") -> int:
    """Reject floats, bools and negatives early: money is an ``int`` of minor units or nothing."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"{what} must be an int of minor units, got {type(amount).__name__}")
    if amount < 0:
        raise ValueError(f"{what} must not be negative")
    return amount


def require_currency(currency: str) -> str:
    if not _CURRENCY.match(currency):
        raise ValueError(f"currency must be an upper-case ISO 4217 code, got {currency!r}")
    return currency


def out_trade_no_for(order_id: str, attempt: int = 1) -> str:
    """Deterministic merchant trade number (32 chars of [0-9a-f] after a prefix).

    Fits both WeChat's 6-32 character limit and Alipay's 64. ``attempt`` lets a new payment
    attempt for the same order (after a close) get a fresh number.
    """
    digest = uuid.uuid5(_REFERENCE_NAMESPACE, f"payment/{order_id}/{attempt}").hex
    return f"rc{digest[:30]}"


def out_refund_no_for(out_trade_no: str, refund_seq: int) -> str:
    """Deterministic refund number: Alipay ``out_request_no`` / WeChat ``out_refund_no``."""
    digest = uuid.uuid5(_REFERENCE_NAMESPACE, f"refund/{out_trade_no}/{refund_seq}").hex
    return f"rf{digest[:30]}"


class PaymentStatus(StrEnum):
    PENDING = "pending"  # created, buyer has not paid yet
    SUCCEEDED = "succeeded"  # money captured
    REQUIRES_CAPTURE = "requires_capture"  # authorised, capture pending (cards)
    FAILED = "failed"  # attempt failed; the trade may be retried by the buyer
    CLOSED = "closed"  # closed unpaid (timeout, cancel) or fully refunded (Alipay)
    REFUNDED = "refunded"  # at least one refund was made (WeChat's REFUND state)


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class IdentityCheck(StrEnum):
    MATCH = "match"  # payer registered with the provider is the declared buyer
    MISMATCH = "mismatch"
    UNCHECKED = "unchecked"


@dataclass(frozen=True, slots=True)
class RedirectToUrl:
    """Send the buyer's browser here (Alipay page pay, Stripe alipay_handle_redirect)."""

    url: str


@dataclass(frozen=True, slots=True)
class DisplayQrCode:
    """Render ``data`` as a QR code for the buyer's phone (Alipay precreate, WeChat Native)."""

    data: str


NextAction = RedirectToUrl | DisplayQrCode


@dataclass(frozen=True, slots=True)
class CreatePayment:
    order_id: str
    amount_minor: int
    currency: str
    method: PaymentMethod
    out_trade_no: str  # doubles as the idempotency key
    subject: str
    notify_url: str | None = None
    return_url: str | None = None
    # A payment method the buyer's client already tokenised (Stripe ``pm_…``) for server-side
    # confirmation; wallets and QR flows leave it empty.
    payment_method_ref: str | None = None
    capture_manually: bool = False  # authorise now, capture later (cards)

    def __post_init__(self) -> None:
        require_minor_units(self.amount_minor)
        if self.amount_minor == 0:
            raise ValueError("a payment must be for a positive amount")
        require_currency(self.currency)
        if self.method not in PAYMENT_METHODS:
            raise ValueError(f"unknown payment method {self.method!r}")


@dataclass(frozen=True, slots=True)
class PaymentStarted:
    out_trade_no: str
    status: PaymentStatus
    next_action: NextAction | None
    provider_payment_ref: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PaymentState:
    """The provider's view of a payment; the source of truth for reconciliation."""

    out_trade_no: str
    status: PaymentStatus
    amount_minor: int
    currency: str
    provider_payment_ref: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class RefundPayment:
    out_trade_no: str
    out_refund_no: str  # idempotency key for this refund
    refund_minor: int
    payment_total_minor: int  # WeChat wants the original total alongside
    currency: str
    reason: str | None = None

    def __post_init__(self) -> None:
        require_minor_units(self.refund_minor, what="refund_minor")
        require_minor_units(self.payment_total_minor, what="payment_total_minor")
        if not 0 < self.refund_minor <= self.payment_total_minor:
            raise ValueError("refund must be positive and at most the payment total")
        require_currency(self.currency)


@dataclass(frozen=True, slots=True)
class RefundResult:
    out_refund_no: str
    status: RefundStatus
    refund_minor: int
    currency: str
    provider_refund_ref: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PaymentNotification:
    """A verified, decrypted, provider-neutral notification. ``raw`` is the provider's payload."""

    provider: str
    provider_event_id: str
    kind: NotificationKind
    out_trade_no: str
    status: PaymentStatus
    amount_minor: int
    currency: str
    raw: Mapping[str, Any] = field(repr=False)
    out_refund_no: str | None = None
    refund_minor: int | None = None


@dataclass(frozen=True, slots=True)
class BillLine:
    """One line of a provider's daily trade bill: a payment or a refund, positive fen."""

    out_trade_no: str
    kind: NotificationKind
    amount_minor: int
    currency: str
    out_refund_no: str | None = None  # refunds only
    provider_ref: str | None = None  # the provider's trade or refund number


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The exact HTTP answer a provider expects from a notification endpoint."""

    status_code: int
    body: bytes
    content_type: str | None


@dataclass(frozen=True, slots=True)
class DeclareCustoms:
    """Payment leg of China's three-document match (三单比对) for one order or sub-order."""

    out_trade_no: str
    out_request_no: str  # idempotency key for this declaration
    order_no: str  # the merchant order number customs will match against
    customs_code: str  # customs office, e.g. "HANGZHOU_ZS"
    merchant_customs_no: str
    merchant_customs_name: str
    amount_minor: int
    payer_name: str = field(repr=False)
    payer_id_number: str = field(repr=False)
    currency: str = "CNY"

    def __post_init__(self) -> None:
        require_minor_units(self.amount_minor)
        require_currency(self.currency)


@dataclass(frozen=True, slots=True)
class CustomsDeclarationResult:
    out_request_no: str
    declaration_ref: str
    identity_check: IdentityCheck
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class PaymentGatewayError(Exception):
    """Base for everything a gateway adapter raises on purpose."""


class ProviderRejected(PaymentGatewayError):
    """The provider answered, authentically, with a business or validation error."""

    def __init__(self, code: str, message: str, *, sub_code: str | None = None) -> None:
        super().__init__(f"{code}{'/' + sub_code if sub_code else ''}: {message}")
        self.code = code
        self.sub_code = sub_code


class UnsupportedOperation(PaymentGatewayError):
    """The provider has no such capability (e.g. customs declarations through Stripe)."""


class BadSignature(PaymentGatewayError):
    """A response or notification did not verify; its content must not be trusted."""


class StaleNotification(PaymentGatewayError):
    """Authentic but outside the accepted time window; may be a captured message replayed."""


class ReplayedNotification(StaleNotification):
    """This exact signed message was accepted before.

    The first copy was applied (or is being applied), so the caller should not apply it again; it
    may still answer with the success acknowledgement so that the provider stops resending.
    """


class NotificationReplayGuard(Protocol):
    def first_sighting(self, fingerprint: str) -> bool:
        """Record ``fingerprint``; True if it was not seen before."""
        ...


class InMemoryReplayGuard:
    """Bounded in-process memory of signed messages already accepted.

    Enough for one process within the freshness window; a multi-process deployment shares a
    guard backed by the database (the event store's receipts do the final de-duplication anyway).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first_sighting(self, fingerprint: str) -> bool:
        with self._lock:
            if fingerprint in self._seen:
                return False
            self._seen[fingerprint] = None
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True


def message_fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


@runtime_checkable
class PaymentGateway(Protocol):
    """One adapter per provider dialect (``alipay``, ``wechatpay``, ``stripe``)."""

    provider: str

    async def create_payment(self, command: CreatePayment) -> PaymentStarted: ...

    async def query_payment(self, out_trade_no: str) -> PaymentState: ...

    async def close_payment(self, out_trade_no: str) -> None: ...

    async def refund(self, command: RefundPayment) -> RefundResult: ...

    def parse_notification(
        self, headers: Mapping[str, str], raw_body: bytes
    ) -> PaymentNotification:
        """Verify on the raw bytes, then normalise; raises BadSignature / StaleNotification."""
        ...

    def acknowledgement(self, accepted: bool) -> Acknowledgement: ...

    async def declare_customs(self, command: DeclareCustoms) -> CustomsDeclarationResult: ...


@runtime_checkable
class BillingGateway(PaymentGateway, Protocol):
    """Also lists every payment and refund booked on a day (the provider's, Beijing time).

    Stripe has no such bill, so callers look for ``fetch_daily_bill`` with ``getattr`` instead
    of demanding it of every ``PaymentGateway``."""

    async def fetch_daily_bill(self, bill_date: datetime.date) -> list[BillLine]: ...
