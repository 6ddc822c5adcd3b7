"""Notes and the counting of clicks on them: use cases run by the group-commit writer as
`fn(uow, cfg, ...)`. Clicks reach `count_engagement` through commerce.services.engagement, which
coalesces them; creators, links and codes are in commerce.services.referrals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.creators import Creator
from commerce.domain.errors import DomainError, InvalidInput, NotFound
from commerce.domain.journeys import NOTE_CLICK, NOTE_VIEW, ON_A_NOTE, Journey, touchpoint
from commerce.domain.merchants import Product
from commerce.domain.notes import PRODUCTS_MAX, Note, validate_content
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.idempotency import Answer, Idempotency, once


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


# -- views ------------------------------------------------------------------------------------
def note_view(note: Note) -> dict:
    return {
        "id": str(note.id),
        "author_id": str(note.author_id),
        "title": note.title,
        "body": note.body,
        "image_refs": list(note.image_refs),
        "product_ids": [str(p) for p in note.product_ids],
        "hashtags": list(note.hashtags),
        "counts": dict(note.counts),
        "posted_at": iso(note.posted_at),
        "edited_at": iso(note.edited_at),
        "version": note.version,
    }


def comment_view(note_id: UUID, comment: dict) -> dict:
    return {
        "id": str(comment["id"]),
        "note_id": str(note_id),
        "author_id": str(comment["author_id"]),
        "text": comment["text"],
        "at": iso(comment["at"]),
    }


# -- notes ------------------------------------------------------------------------------------
def _tagged(uow: UnitOfWork, product_ids: list[UUID]) -> list[UUID]:
    if len(product_ids) > PRODUCTS_MAX:
        raise InvalidInput(f"at most {PRODUCTS_MAX} products", field="product_ids")
    for i, product_id in enumerate(product_ids):
        if uow.get(product_id, Product) is None:
            raise InvalidInput("no such product", field=f"product_ids[{i}]")
    return list(dict.fromkeys(product_ids))


def live_note(uow: UnitOfWork, note_id: UUID) -> Note:
    note = uow.get(note_id, Note)
    if note is None:
        raise NotFound("no such note", field="note_id")
    note.require_live()
    return note


def post_note(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    idem: Idempotency | None,
    author_id: UUID,
    title: str,
    body: str,
    image_refs: list[str],
    product_ids: list[UUID],
) -> Answer:
    def create() -> Answer:
        clean_title, hashtags = validate_content(title, body, image_refs)
        note = Note(
            id=idem.resource_id("note") if idem else uuid4(),
            author_id=author_id,
            title=clean_title,
            body=body,
            image_refs=image_refs,
            product_ids=_tagged(uow, product_ids),
            hashtags=hashtags,
            at=cfg.clock(),
        )
        uow.add(note)
        return Answer(201, note_view(note))

    return once(uow, idem, create)


def edit_note(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    author_id: UUID,
    note_id: UUID,
    title: str,
    body: str,
    image_refs: list[str],
    product_ids: list[UUID],
) -> dict:
    note = live_note(uow, note_id)
    note.require_author(author_id)
    clean_title, hashtags = validate_content(title, body, image_refs)
    products = _tagged(uow, product_ids)
    note.edit(author_id, clean_title, body, image_refs, products, hashtags, cfg.clock())
    return note_view(note)


def delete_note(uow: UnitOfWork, cfg: CommerceConfig, author_id: UUID, note_id: UUID) -> None:
    live_note(uow, note_id).delete(author_id, cfg.clock())


def get_note(uow: UnitOfWork, cfg: CommerceConfig, note_id: UUID) -> dict:
    """Read through the writer's cache: a note's stream grows with every flush that counted it,
    so loading it afresh for each reader would get slower the more popular it is."""
    return note_view(live_note(uow, note_id))


def delete_comment(
    uow: UnitOfWork, cfg: CommerceConfig, user_id: UUID, note_id: UUID, comment_id: UUID
) -> None:
    """The comment count goes down in the same command, as a count with a flush id of its
    own, so a projection summing counts sees it once."""
    note, now = live_note(uow, note_id), cfg.clock()
    if note.delete_comment(comment_id, user_id, now):
        note.count({"comments": -1}, now, f"uncomment:{comment_id}")


def list_comments(
    uow: UnitOfWork, cfg: CommerceConfig, note_id: UUID, start: int, limit: int
) -> dict:
    """Oldest first; the cursor is the position of the next comment. Deleted comments keep
    their place but are not shown, so a page may hold fewer than `limit`."""
    note = live_note(uow, note_id)
    page = note.comments[start : start + limit]
    items = [comment_view(note.id, c) for c in page if c.get("deleted_at") is None]
    more = start + limit < len(note.comments)
    return {"items": items, "next_cursor": str(start + limit) if more else None}


# -- counting clicks: the writer's half of commerce.services.engagement -------------------------
@dataclass(frozen=True)
class Touch:
    """A touchpoint as reported. The creator is known up front for links and rooms; for notes
    it is the author, if the author is a registered creator."""

    kind: str
    source_id: str
    product_id: UUID | None = None
    creator_id: UUID | None = None


@dataclass
class Flush:
    flush_id: str
    deltas: dict[UUID, dict[str, int]]  # per note, from the like/save ledger and shares
    # (click, note, author, comment id, text, Idempotency-Key)
    comments: list[tuple[int, UUID, UUID, UUID, str, Idempotency | None]] = field(
        default_factory=list
    )
    touches: list[tuple[int, UUID, Touch]] = field(default_factory=list)  # (click, buyer, ...)


@dataclass
class Counted:
    outcomes: dict[int, Any]  # click index → its answer, or the DomainError refusing it
    counts: dict[UUID, dict[str, int]]
    gone: set[UUID]  # notes deleted since the flush began: their clicks are refused


def journey(uow: UnitOfWork, buyer_id: UUID, now: datetime) -> Journey:
    found = uow.get(ids.journey_id(buyer_id), Journey)
    if found is None:
        found = uow.add(Journey(id=ids.journey_id(buyer_id), buyer_id=buyer_id, at=now))
    return found  # type: ignore[return-value]


def note_authors(uow: UnitOfWork, cfg: CommerceConfig, note_ids: set[UUID]) -> dict[UUID, UUID]:
    """The live notes among `note_ids`, with their authors."""
    found = (uow.get(note_id, Note) for note_id in note_ids)
    return {note.id: note.author_id for note in found if note is not None and note.live}


def count_engagement(uow: UnitOfWork, cfg: CommerceConfig, flush: Flush) -> Counted:
    """One flush in one transaction: its comments, its touchpoints (a note view also counts as
    a view), then one EngagementCounted per note and one TouchpointsRecorded per buyer. A click
    that is refused gets its error as its outcome: one bad click never fails the others."""
    now = cfg.clock()
    deltas = {note_id: dict(tally) for note_id, tally in flush.deltas.items()}
    outcomes: dict[int, Any] = {}

    def bump(note_id: UUID, counter: str) -> None:
        tally = deltas.setdefault(note_id, {})
        tally[counter] = tally.get(counter, 0) + 1

    for index, note_id, author_id, comment_id, text, idem in flush.comments:
        add = partial(_comment, uow, note_id, author_id, comment_id, text, now, bump)
        try:
            outcomes[index] = once(uow, idem, add)
        except DomainError as exc:
            outcomes[index] = exc
    visits: dict[UUID, list[dict]] = {}
    for index, buyer_id, touch in flush.touches:
        try:
            outcomes[index] = _touchpoint(uow, touch, now, bump)
        except DomainError as exc:
            outcomes[index] = exc
            continue
        visits.setdefault(buyer_id, []).append(outcomes[index])
    counted = Counted(outcomes, {}, set())
    for note_id, tally in deltas.items():
        note = uow.get(note_id, Note)
        if note is None or not note.live:
            counted.gone.add(note_id)
            continue
        note.count(tally, now, flush.flush_id)
        counted.counts[note_id] = dict(note.counts)
    for buyer_id, touchpoints in visits.items():
        journey(uow, buyer_id, now).record(touchpoints)
    return counted


def _comment(
    uow: UnitOfWork,
    note_id: UUID,
    author_id: UUID,
    comment_id: UUID,
    text: str,
    now: datetime,
    bump: Any,
) -> Answer:
    note = live_note(uow, note_id)
    if note.comment(comment_id, author_id, text, now):
        bump(note_id, "comments")
    return Answer(201, comment_view(note.id, note.comments[note.comment_index[comment_id]]))


def _touchpoint(uow: UnitOfWork, touch: Touch, now: datetime, bump: Any) -> dict:
    creator_id = touch.creator_id
    if touch.kind in ON_A_NOTE:
        note = live_note(uow, UUID(touch.source_id))
        if touch.kind == NOTE_CLICK and touch.product_id not in note.product_ids:
            raise InvalidInput("this product is not tagged on the note", field="product_id")
        creator = uow.get(ids.creator_id(note.author_id), Creator)
        creator_id = None if creator is None else creator.id
        if touch.kind == NOTE_VIEW:
            bump(note.id, "views")
    return touchpoint(uuid4(), touch.kind, creator_id, touch.source_id, touch.product_id, now)
