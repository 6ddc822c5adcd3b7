"""Filing the three customs documents of an order and judging whether they match."""

from __future__ import annotations

from uuid import UUID

from commerce import representations
from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.customs import CustomsFiling
from commerce.domain.errors import InvalidTransition
from commerce.domain.orders import CUSTOMS_REJECTED, PAID
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.access import Principal
from commerce.services.fulfilment import load_order


def filing_view(filing: CustomsFiling) -> dict:
    return {
        "order_id": str(filing.order_id),
        "customs_code": filing.customs_code,
        "documents": filing.documents,
        "verdict": filing.verdict,
        "reasons": filing.reasons,
    }


def file_customs_documents(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    principal: Principal,
    order_id: UUID,
    customs_code: str,
    merchant_customs_no: str,
    payment_document: dict,
    logistics_document: dict,
) -> dict:
    """All three documents in and matching → the order is customs_declared, atomically."""
    order, now = load_order(uow, order_id, principal), cfg.clock()
    if order.status(now) not in (PAID, CUSTOMS_REJECTED):
        raise InvalidTransition(f"cannot declare an order that is {order.status(now)} to customs")
    filing = uow.get(ids.customs_filing_id(order.id), CustomsFiling)
    if filing is None:
        filing = uow.add(
            CustomsFiling(
                id=ids.customs_filing_id(order.id),
                order_id=order.id,
                customs_code=customs_code,
                merchant_customs_no=merchant_customs_no,
            )
        )
    filing.file(
        "order",
        {"order_no": str(order.id), "amount_fen": order.total_fen,
         "buyer": order.identity["identity_hash"]},
        now,
    )  # fmt: skip
    filing.file("payment", payment_document, now)
    filing.file("logistics", logistics_document, now)
    reasons = filing.mismatches(order.total_fen, order.address["recipient"])
    filing.judge("mismatched" if reasons else "matched", reasons, now)
    if not reasons:
        order.declare_customs(payment_document["declaration_ref"], now)
    return {"order": representations.order_view(order, now), "customs": filing_view(filing)}
