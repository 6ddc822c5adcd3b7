"""Notes and what buyers do with them; touchpoints buyers' apps report.

Every click (like, save, share, comment, touchpoint) goes through the engagement buffer
(commerce.services.engagement) and is answered once the flush holding it committed, within a
few hundred milliseconds. Note content changes go straight through the group-commit writer.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from commerce.api import responses as out
from commerce.api.auth import allow
from commerce.api.common import MAX_PAGE, Cursor, PageLimit, answer, body_uuid, path_uuid
from commerce.api.deps import Caller, IdemKey, Runtime
from commerce.domain import journeys
from commerce.domain.errors import InvalidInput, NotFound
from commerce.platform.groupcommit import WriterUnavailable
from commerce.services import social
from commerce.services.access import BUYER, Principal
from commerce.services.engagement import COMMENT, LIKE, SAVE, SHARE, TOUCH, UNLIKE, UNSAVE, Click

Short = Annotated[str, Meta(max_length=1000)]
# The livestream runtime: asked only whether a room exists, who presents it and what it pinned.
Live: TypeAlias = NamedDependency[Any]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class NoteContent(Strict):
    """Types and sizes a parser can check (400); the note's own limits are the domain's (422)."""

    title: Short
    body: Annotated[str, Meta(max_length=20_000)] = ""
    image_refs: Annotated[list[Short], Meta(max_length=100)] = msgspec.field(default_factory=list)
    product_ids: Annotated[list[Short], Meta(max_length=100)] = msgspec.field(default_factory=list)


class NewComment(Strict):
    text: Annotated[str, Meta(max_length=5000)]


class NewTouchpoint(Strict):
    kind: Annotated[str, Meta(max_length=32)]
    source_id: Annotated[str, Meta(max_length=100)]
    product_id: Annotated[str, Meta(max_length=100)] | None = None


def _products(ids: list[str]) -> list[UUID]:
    return [body_uuid(value, f"product_ids[{i}]") for i, value in enumerate(ids)]


async def click(
    runtime: Any, kind: str, user: Principal, note: UUID | None, detail: Any = None
) -> Any:
    if runtime.engagement is None:
        raise WriterUnavailable("engagement is not running")
    return await runtime.engagement.submit(Click(kind, user.id, note, detail))


class NoteController(Controller):
    path = "/notes"
    tags = ("notes",)

    @post("/", status_code=201, guards=[allow(BUYER)])
    async def post_note(
        self,
        data: JSONBody[NoteContent],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.Note]:
        """Post a note. Hashtags are taken from the title and body (`#防晒`), at most 10; tagged
        products (at most 20) must exist. Send an `Idempotency-Key` to retry safely."""
        result = await runtime.writer.submit(
            social.post_note,
            runtime.cfg,
            idempotency,
            principal.id,
            data.title,
            data.body,
            data.image_refs,
            _products(data.product_ids),
        )
        return answer(result)

    @get("/{note_id:str}")
    async def get_note(self, note_id: FromPath[str], runtime: Runtime) -> out.Note:
        """A note with its engagement counts, as of the last flush (public)."""
        return await runtime.writer.submit(social.get_note, runtime.cfg, path_uuid(note_id, "note"))

    @put("/{note_id:str}", guards=[allow(BUYER)])
    async def edit_note(
        self,
        note_id: FromPath[str],
        data: JSONBody[NoteContent],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Note:
        """Replace the content of your own note."""
        return await runtime.writer.submit(
            social.edit_note,
            runtime.cfg,
            principal.id,
            path_uuid(note_id, "note"),
            data.title,
            data.body,
            data.image_refs,
            _products(data.product_ids),
        )

    @delete("/{note_id:str}", status_code=204, guards=[allow(BUYER)])
    async def delete_note(
        self, note_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> None:
        """Delete your own note; it then answers 404 to everyone and takes no more clicks."""
        await runtime.writer.submit(
            social.delete_note, runtime.cfg, principal.id, path_uuid(note_id, "note")
        )

    @post("/{note_id:str}/like", status_code=200, guards=[allow(BUYER)])
    async def like(self, note_id: FromPath[str], principal: Caller, runtime: Runtime) -> out.Liked:
        """Like a note; liking it again changes nothing."""
        return await click(runtime, LIKE, principal, path_uuid(note_id, "note"))

    @delete("/{note_id:str}/like", status_code=200, guards=[allow(BUYER)])
    async def unlike(
        self, note_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.Liked:
        return await click(runtime, UNLIKE, principal, path_uuid(note_id, "note"))

    @post("/{note_id:str}/save", status_code=200, guards=[allow(BUYER)])
    async def save(self, note_id: FromPath[str], principal: Caller, runtime: Runtime) -> out.Saved:
        """Save a note to your collection; saving it again changes nothing."""
        return await click(runtime, SAVE, principal, path_uuid(note_id, "note"))

    @delete("/{note_id:str}/save", status_code=200, guards=[allow(BUYER)])
    async def unsave(
        self, note_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.Saved:
        return await click(runtime, UNSAVE, principal, path_uuid(note_id, "note"))

    @post("/{note_id:str}/shares", status_code=200, guards=[allow(BUYER)])
    async def share(
        self, note_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.Engagement:
        """Count a share (every share counts)."""
        return await click(runtime, SHARE, principal, path_uuid(note_id, "note"))

    @get("/{note_id:str}/engagement/me", guards=[allow(BUYER)])
    async def my_engagement(
        self, note_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.MyEngagement:
        """Whether you like and have saved this note."""
        nid = path_uuid(note_id, "note")
        await runtime.writer.submit(social.get_note, runtime.cfg, nid)
        return await sync_to_thread(runtime.engagement.ledger.state_of, nid, principal.id)

    @post("/{note_id:str}/comments", status_code=201, guards=[allow(BUYER)])
    async def comment(
        self,
        note_id: FromPath[str],
        data: JSONBody[NewComment],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.Comment]:
        """Comment on a note (at most 500 characters). Send an `Idempotency-Key` to retry."""
        comment_id = idempotency.resource_id("comment") if idempotency else uuid4()
        detail = (comment_id, data.text, idempotency)
        result = await click(runtime, COMMENT, principal, path_uuid(note_id, "note"), detail)
        return answer(result)

    @delete("/{note_id:str}/comments/{comment_id:str}", status_code=204, guards=[allow(BUYER)])
    async def delete_comment(
        self, note_id: FromPath[str], comment_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> None:
        """Delete a comment: yours, or any on your note. Deleting it again changes nothing."""
        await runtime.writer.submit(
            social.delete_comment,
            runtime.cfg,
            principal.id,
            path_uuid(note_id, "note"),
            path_uuid(comment_id, "comment"),
        )

    @get("/{note_id:str}/comments")
    async def comments(
        self,
        note_id: FromPath[str],
        runtime: Runtime,
        cursor: Cursor = None,
        limit: PageLimit = 50,
    ) -> out.CommentPage:
        """A note's comments, oldest first (public)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"must be from 1 to {MAX_PAGE}", field="limit")
        if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
            raise InvalidInput("is not a cursor this API gave out", field="cursor")
        start = int(cursor or 0)
        return await runtime.writer.submit(
            social.list_comments, runtime.cfg, path_uuid(note_id, "note"), start, limit
        )


@post("/touchpoints", status_code=201, guards=[allow(BUYER)], tags=["notes", "live"])
async def record_touchpoint(
    data: JSONBody[NewTouchpoint], principal: Caller, runtime: Runtime, live: Live
) -> out.Touchpoint:
    """Report a touchpoint: `note_view` or `note_click` (source: note id; a click names a
    product tagged on it), `live_join` or `live_click` (source: live session id; a click names a
    product pinned in it). A note view also counts as a view of the note."""
    if data.kind not in journeys.REPORTED_KINDS:
        raise InvalidInput(f"must be one of {', '.join(journeys.REPORTED_KINDS)}", field="kind")
    source = body_uuid(data.source_id, "source_id")
    product = None if data.product_id is None else body_uuid(data.product_id, "product_id")
    if (product is None) == (data.kind in journeys.WITH_A_PRODUCT):
        needs = "a" if product is None else "no"
        raise InvalidInput(f"a {data.kind} touchpoint takes {needs} product", field="product_id")
    creator = None
    if data.kind in journeys.IN_A_ROOM:
        session = await live.read(source)
        if session is None:
            raise NotFound("no such live session", field="source_id")
        if product is not None and product not in {p.product_id for p in session.pins}:
            raise InvalidInput("this product was not pinned in the session", field="product_id")
        creator = session.creator_id
    touch = social.Touch(data.kind, str(source), product, creator)
    note = source if data.kind in journeys.ON_A_NOTE else None
    try:
        return await click(runtime, TOUCH, principal, note, touch)
    except NotFound as exc:
        raise NotFound(exc.detail, field="source_id") from None
