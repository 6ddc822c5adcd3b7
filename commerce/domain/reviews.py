"""A buyer's review of a product they received: 1 to 5 stars and an optional text.

Only a buyer whose order for the product was delivered may review it, once per order and
product: the review id is uuid5(order, product) (commerce.domain.ids.review_id), so a second
review collides on the stream instead of needing an index. Reviews feed the product page's
rating summary (Wilson lower bound, projections.read.ranking).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import InvalidInput

TEXT_MAX = 1000


def validate_review(stars: int, text: str | None) -> str:
    """The stripped text ("" if none); raises InvalidInput naming the field."""
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
        raise InvalidInput("must be a whole number of stars from 1 to 5", field="stars")
    text = (text or "").strip()
    if len(text) > TEXT_MAX:
        raise InvalidInput(f"must be at most {TEXT_MAX} characters", field="text")
    return text


class Review(Aggregate):
    TOPIC = "commerce.Review"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Review.Created"

    @event("Posted", topic="commerce.Review.Posted")
    def __init__(
        self,
        order_id: UUID,
        product_id: UUID,
        merchant_id: UUID,
        buyer_id: UUID,
        stars: int,
        text: str,
        at: datetime,
    ) -> None:
        self.order_id = order_id
        self.product_id = product_id
        self.merchant_id = merchant_id
        self.buyer_id = buyer_id
        self.stars = stars
        self.text = text
        self.at = at
