"""A buyer's journey: the touchpoints attribution weighs when the buyer orders.

One stream per buyer, appended in batches: a buyer scrolling a feed views notes several times a
second, so touchpoints are coalesced like engagement (commerce.services.engagement) and land as
one `TouchpointsRecorded` per buyer per flush. Each touchpoint is a plain dict of strings, the
shape the attribution projection reads (docs/events-social.md); the projection, not this stream,
decides who earns credit, so a touchpoint records what happened and never a verdict.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

NOTE_VIEW, NOTE_CLICK, REFERRAL_CLICK = "note_view", "note_click", "referral_click"
LIVE_JOIN, LIVE_CLICK, PROMO_CODE = "live_join", "live_click", "promo_code"
KINDS = (NOTE_VIEW, NOTE_CLICK, REFERRAL_CLICK, LIVE_JOIN, LIVE_CLICK, PROMO_CODE)
# What a buyer's app reports itself; referral clicks and promo codes are recorded by the server
# where they happen (GET /r/{code}, checkout), never on the client's word.
REPORTED_KINDS = (NOTE_VIEW, NOTE_CLICK, LIVE_JOIN, LIVE_CLICK)
ON_A_NOTE = (NOTE_VIEW, NOTE_CLICK)
IN_A_ROOM = (LIVE_JOIN, LIVE_CLICK)
WITH_A_PRODUCT = (NOTE_CLICK, LIVE_CLICK)


def touchpoint(
    touchpoint_id: UUID,
    kind: str,
    creator_id: UUID | None,
    source_id: str,
    product_id: UUID | None,
    at: datetime,
) -> dict:
    """`source_id` is the note id, link code, live session id or promo code."""
    if kind not in KINDS:
        raise ValueError(f"unknown touchpoint kind {kind!r}")
    return {
        "id": str(touchpoint_id),
        "kind": kind,
        "creator_id": "" if creator_id is None else str(creator_id),
        "source_id": source_id,
        "product_id": None if product_id is None else str(product_id),
        "at": at.isoformat(),
    }


class Journey(Aggregate):
    TOPIC = "commerce.Journey"
    id: UUID  # ids.journey_id(buyer_id)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Journey.Created"

    # A stream's first event must be a creation event, and a topic names one event class, so
    # `TouchpointsRecorded` cannot also open the stream: `Started` does, once per buyer.
    @event("Started", topic="commerce.Journey.Started")
    def __init__(self, buyer_id: UUID, at: datetime) -> None:
        self.buyer_id = buyer_id
        self.recorded = 0
        self.last_at: str | None = None

    def record(self, touchpoints: list[dict]) -> bool:
        if not touchpoints:
            return False
        self._recorded(self.buyer_id, touchpoints)
        return True

    @event("TouchpointsRecorded", topic="commerce.Journey.TouchpointsRecorded")
    def _recorded(self, buyer_id: UUID, touchpoints: list[dict]) -> None:
        # Only a tally: the touchpoints themselves are for the projection, and keeping them here
        # would grow the aggregate with every scroll.
        self.recorded += len(touchpoints)
        self.last_at = touchpoints[-1]["at"]
