"""Domain errors: each names the rule or field it is about, so the edge can say it exactly.

The HTTP edge maps these classes to status codes in one place (commerce.api.problems); the
domain never knows about HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused; nothing was written."""

    code = "domain_error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"


class InvalidInput(DomainError):
    code = "invalid_input"


class Conflict(DomainError):
    """The request is valid but the current state refuses it (e.g. out of stock, wrong state)."""

    code = "conflict"


class OutOfStock(Conflict):
    code = "out_of_stock"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class LimitBreached(DomainError):
    """A cross-border (CBEC) limit would be exceeded."""

    code = "limit_exceeded"


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request body."""

    code = "idempotency_key_reused"
