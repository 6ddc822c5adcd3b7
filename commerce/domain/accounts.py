"""Buyers, FX rates and idempotency records: small aggregates the order path reads or writes."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import InvalidInput


class Buyer(Aggregate):
    """A signed-up buyer. Only the token's hash is kept; the token itself is shown once."""

    TOPIC = "commerce.Buyer"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Buyer.Created"

    @event("SignedUp", topic="commerce.Buyer.SignedUp")
    def __init__(self, display_name: str, token_hash: str) -> None:
        self.display_name = display_name
        self.token_hash = token_hash


class FxRate(Aggregate):
    """CNY per one unit of a foreign currency, as set by an admin; every change is a fact."""

    TOPIC = "commerce.FxRate"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.FxRate.Created"

    @event("Opened", topic="commerce.FxRate.Opened")
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.rate: Decimal | None = None

    def set(self, rate: Decimal, set_by: str) -> None:
        if not (Decimal("0") < rate < Decimal("10000")):
            raise InvalidInput("must be a positive number of CNY per unit", field="rate")
        self._set(rate, set_by)

    @event("RateSet", topic="commerce.FxRate.RateSet")
    def _set(self, rate: Decimal, set_by: str) -> None:
        self.rate = rate


class IdempotencyRecord(Aggregate):
    """The first answer to a creating request, saved in the same transaction as what it created.

    A replay with the same key and body gets this answer back; a different body is refused. It is
    an event, so it outlives the 24 hours clients are promised.
    """

    TOPIC = "commerce.IdempotencyRecord"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.IdempotencyRecord.Created"

    @event("Recorded", topic="commerce.IdempotencyRecord.Recorded")
    def __init__(self, fingerprint: str, status_code: int, body: dict) -> None:
        self.fingerprint = fingerprint
        self.status_code = status_code
        self.body = body


def require_positive_int(value: int, field: str, maximum: int = 10**12) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        raise InvalidInput(f"must be a whole number from 1 to {maximum}", field=field)
    return value


def as_uuid(value: str | UUID, field: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise InvalidInput("must be a UUID", field=field) from None


class PaymentReceipt(Aggregate):
    """One provider notification, applied once.

    Its id derives from the provider's event id and it is saved in the same transaction as the
    order's events, so the same notification arriving ten times, shuffled, across processes,
    changes the order exactly once: every later copy meets the (id, version) key or finds this.
    """

    TOPIC = "commerce.PaymentReceipt"
    id: UUID

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.PaymentReceipt.Created"

    @event("Recorded", topic="commerce.PaymentReceipt.Recorded")
    def __init__(
        self,
        provider: str,
        provider_event_id: str,
        order_id: UUID,
        payment_ref: str,
        amount_fen: int,
        outcome: str,
    ) -> None:
        self.provider = provider
        self.provider_event_id = provider_event_id
        self.order_id = order_id
        self.payment_ref = payment_ref
        self.amount_fen = amount_fen
        self.outcome = outcome  # "paid", "already_paid" or "refund_due"
