"""Idempotency-Key support for creating requests, atomic with what they create."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from commerce.domain import ids
from commerce.domain.accounts import IdempotencyRecord
from commerce.domain.errors import IdempotencyKeyReused
from commerce.platform.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Idempotency:
    principal: str  # who sent it: keys are scoped per caller
    key: str
    fingerprint: str  # hash of method, path and body

    @property
    def record_id(self) -> UUID:
        return ids.idempotency_id(self.principal, self.key)

    def resource_id(self, kind: str) -> UUID:
        return ids.keyed_id(kind, self.principal, self.key)


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict
    replayed: bool = False


def once(uow: UnitOfWork, idem: Idempotency | None, create: Callable[[], Answer]) -> Answer:
    if idem is None:
        return create()
    record = uow.get(idem.record_id, IdempotencyRecord)
    if record is not None:
        if record.fingerprint != idem.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request",
                field="Idempotency-Key",
            )
        return Answer(record.status_code, record.body, replayed=True)
    answer = create()
    uow.add(
        IdempotencyRecord(
            id=idem.record_id,
            fingerprint=idem.fingerprint,
            status_code=answer.status_code,
            body=answer.body,
        )
    )
    return answer
