"""Posting a product review: the buyer of a delivered order, once per product of that order."""

from __future__ import annotations

from uuid import UUID

from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from commerce.domain.orders import DELIVERED
from commerce.domain.reviews import Review, validate_review
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.access import BUYER, Principal
from commerce.services.fulfilment import load_order
from commerce.services.idempotency import Answer


def review_view(review: Review) -> dict:
    return {
        "id": str(review.id),
        "order_id": str(review.order_id),
        "product_id": str(review.product_id),
        "merchant_id": str(review.merchant_id),
        "stars": review.stars,
        "text": review.text,
        "at": review.at.isoformat(),
    }


def post_review(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    principal: Principal,
    order_id: UUID,
    product_id: UUID,
    stars: int,
    text: str | None,
) -> Answer:
    """The order must be the caller's (else 404, like a missing one) and must have been
    delivered (a refund after delivery does not take the right to review away).

    Posting the same review again answers the first one (so a retried request is safe); a
    different review of the same product on the same order is a conflict.
    """
    if principal.kind != BUYER:
        raise NotFound("no such order", field="order_id")
    order = load_order(uow, order_id, principal)
    text = validate_review(stars, text)
    if not any(str(product_id) == line.get("product_id") for line in order.lines):
        raise InvalidInput("is not a product of this order", field="product_id")
    if DELIVERED not in (status for status, _ in order.history):
        raise InvalidTransition(
            f"an order that is {order.status(cfg.clock())} cannot be reviewed before delivery",
            field="order_id",
        )
    review_id = ids.review_id(order.id, product_id)
    existing = uow.get(review_id, Review)
    if existing is not None:
        if (existing.stars, existing.text) == (stars, text):
            return Answer(201, review_view(existing), replayed=True)
        raise Conflict("this product of this order was already reviewed", field="product_id")
    review = Review(
        id=review_id,
        order_id=order.id,
        product_id=product_id,
        merchant_id=order.merchant_id,
        buyer_id=order.buyer_id,
        stars=stars,
        text=text,
        at=cfg.clock(),
    )
    uow.add(review)
    return Answer(201, review_view(review))


def probe_ids(order_id: UUID, product_id: UUID) -> tuple[UUID, ...]:
    """The review usually does not exist yet: the writer checks such ids per batch."""
    return (ids.review_id(order_id, product_id),)
