"""Notes (RED's 笔记): a buyer's post that tags products, and what other buyers do with it.

Content is event-sourced in full: posting, editing, deleting and every comment are facts someone
wrote and may be shown later. Clicks are not: likes, saves, shares and views arrive by the
thousand per second and are worth little one by one, so they are counted in process and recorded
as one `EngagementCounted` per note per flush, carrying deltas (DESIGN.md decision 3). Who liked
or saved what is kept outside this stream (commerce.services.engagement), because a popular
note's likers would otherwise make its state grow with its audience.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import Conflict, InvalidInput, NotFound

TITLE_MAX, BODY_MAX, COMMENT_MAX = 100, 5000, 500
IMAGES_MAX, PRODUCTS_MAX, HASHTAGS_MAX = 9, 20, 10
# Comments are kept in the aggregate so they list without a read model; the cap bounds what a
# note costs to load. A note this discussed has long since left every feed.
COMMENTS_MAX = 10_000
COUNTERS = ("views", "likes", "saves", "shares", "comments")
RECENT_FLUSHES = 64  # flush ids a note remembers, so a flush finished twice counts once
# An image is uploaded elsewhere (object storage); the note keeps its key or URL, nothing more.
IMAGE_REF = re.compile(r"[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]{1,200}", re.ASCII)
# `\w` is Unicode-aware, so #防晒 and #sunscreen both count; the tag ends at punctuation or space.
HASHTAG = re.compile(r"#(\w{1,30})")


def extract_hashtags(*texts: str) -> list[str]:
    """Hashtags are taken from the text, not given separately, so they can never disagree with
    what readers see. Case-folded and in order of first appearance."""
    tags: list[str] = []
    for text in texts:
        for tag in HASHTAG.findall(text):
            folded = tag.casefold()
            if folded not in tags:
                tags.append(folded)
    return tags


def validate_content(title: str, body: str, image_refs: list[str]) -> tuple[str, list[str]]:
    """The stripped title and the hashtags; raises InvalidInput naming the offending field."""
    title = title.strip()
    if not 0 < len(title) <= TITLE_MAX:
        raise InvalidInput(f"must be 1 to {TITLE_MAX} characters", field="title")
    if len(body) > BODY_MAX:
        raise InvalidInput(f"must be at most {BODY_MAX} characters", field="body")
    if len(image_refs) > IMAGES_MAX:
        raise InvalidInput(f"at most {IMAGES_MAX} images", field="image_refs")
    for i, ref in enumerate(image_refs):
        if not IMAGE_REF.fullmatch(ref):
            raise InvalidInput(
                "must be 1 to 200 URL-safe characters (a storage key or URL)",
                field=f"image_refs[{i}]",
            )
    hashtags = extract_hashtags(title, body)
    if len(hashtags) > HASHTAGS_MAX:
        raise InvalidInput(f"at most {HASHTAGS_MAX} distinct #hashtags", field="body")
    return title, hashtags


class Note(Aggregate):
    TOPIC = "commerce.Note"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Note.Created"

    @event("Posted", topic="commerce.Note.Posted")
    def __init__(
        self,
        author_id: UUID,
        title: str,
        body: str,
        image_refs: list[str],
        product_ids: list[UUID],
        hashtags: list[str],
        at: datetime,
    ) -> None:
        self.author_id = author_id
        self._content(title, body, image_refs, product_ids, hashtags)
        self.posted_at = at
        self.edited_at: datetime | None = None
        self.deleted_at: datetime | None = None
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.comments: list[dict] = []
        self.comment_index: dict[UUID, int] = {}
        self.recent_flushes: deque[str] = deque(maxlen=RECENT_FLUSHES)

    def _content(
        self,
        title: str,
        body: str,
        image_refs: list[str],
        product_ids: list[UUID],
        hashtags: list[str],
    ) -> None:
        self.title = title
        self.body = body
        self.image_refs = list(image_refs)
        self.product_ids = list(product_ids)
        self.hashtags = list(hashtags)

    @property
    def live(self) -> bool:
        return self.deleted_at is None

    def require_live(self) -> None:
        """A deleted note is gone for everyone: reading it or engaging with it is a 404."""
        if not self.live:
            raise NotFound("no such note", field="note_id")

    def require_author(self, user_id: UUID) -> None:
        """Someone else's note looks exactly like a missing one."""
        self.require_live()
        if self.author_id != user_id:
            raise NotFound("no such note", field="note_id")

    # -- content -------------------------------------------------------------------------------
    def edit(
        self,
        author_id: UUID,
        title: str,
        body: str,
        image_refs: list[str],
        product_ids: list[UUID],
        hashtags: list[str],
        now: datetime,
    ) -> bool:
        """Whole new content; False (and no event) when nothing changed."""
        self.require_author(author_id)
        if (title, body, image_refs, product_ids) == (
            self.title,
            self.body,
            self.image_refs,
            self.product_ids,
        ):
            return False
        self._edited(author_id, title, body, image_refs, product_ids, hashtags, now)
        return True

    @event("Edited", topic="commerce.Note.Edited")
    def _edited(
        self,
        author_id: UUID,
        title: str,
        body: str,
        image_refs: list[str],
        product_ids: list[UUID],
        hashtags: list[str],
        at: datetime,
    ) -> None:
        self._content(title, body, image_refs, product_ids, hashtags)
        self.edited_at = at

    def delete(self, author_id: UUID, now: datetime) -> None:
        self.require_author(author_id)
        self._deleted(now)

    @event("Deleted", topic="commerce.Note.Deleted")
    def _deleted(self, at: datetime) -> None:
        self.deleted_at = at

    # -- comments ------------------------------------------------------------------------------
    def comment(self, comment_id: UUID, author_id: UUID, text: str, now: datetime) -> bool:
        """Idempotent by comment id: the same comment again is False (nothing recorded).

        The comment count moves with the next `EngagementCounted`, not here, so a projection
        that sums counts never counts a comment twice.
        """
        self.require_live()
        known = self.comment_index.get(comment_id)
        if known is not None:
            earlier = self.comments[known]
            if earlier.get("deleted_at") is not None:
                raise Conflict("this comment was deleted", field="comment_id")
            if earlier["author_id"] != author_id or earlier["text"] != text.strip():
                raise Conflict("a different comment already has this id", field="comment_id")
            return False
        text = text.strip()
        if not 0 < len(text) <= COMMENT_MAX:
            raise InvalidInput(f"must be 1 to {COMMENT_MAX} characters", field="text")
        if len(self.comments) >= COMMENTS_MAX:
            raise Conflict(f"a note takes at most {COMMENTS_MAX} comments", field="note_id")
        self._commented(comment_id, author_id, text, now)
        return True

    @event("Commented", topic="commerce.Note.Commented")
    def _commented(self, comment_id: UUID, author_id: UUID, text: str, at: datetime) -> None:
        self.comment_index[comment_id] = len(self.comments)
        self.comments.append({"id": comment_id, "author_id": author_id, "text": text, "at": at})

    def delete_comment(self, comment_id: UUID, user_id: UUID, now: datetime) -> bool:
        """The comment's author or the note's author may delete it; to anyone else it looks
        missing. Deleting it again is False (nothing recorded). Its text leaves the note's
        state (the `Commented` fact stays in the log) and its place in the list stays, so
        the list's cursors keep their meaning."""
        self.require_live()
        known = self.comment_index.get(comment_id)
        comment = None if known is None else self.comments[known]
        if comment is None or user_id not in (comment["author_id"], self.author_id):
            raise NotFound("no such comment", field="comment_id")
        if comment.get("deleted_at") is not None:
            return False
        self._comment_deleted(comment_id, user_id, now)
        return True

    @event("CommentDeleted", topic="commerce.Note.CommentDeleted")
    def _comment_deleted(self, comment_id: UUID, by: UUID, at: datetime) -> None:
        i = self.comment_index[comment_id]
        self.comments[i] = self.comments[i] | {"text": "", "deleted_at": at, "deleted_by": by}

    # -- engagement ----------------------------------------------------------------------------
    def count(self, deltas: dict[str, int], now: datetime, flush_id: str) -> bool:
        """Record one flush's deltas; False (and no event) when they are all zero.

        `flush_id` names the flush, so a flush that must be finished after a crash can tell
        whether its count already reached the stream; one of the note's last few counts is
        never applied twice.
        """
        unknown = set(deltas) - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown counters {sorted(unknown)}")
        if not any(deltas.values()) or (flush_id and flush_id in self.recent_flushes):
            return False
        self.require_live()
        full = {name: int(deltas.get(name, 0)) for name in COUNTERS}
        self._counted(at=now, flush_id=flush_id, **full)
        return True

    @event("EngagementCounted", topic="commerce.Note.EngagementCounted")
    def _counted(
        self,
        views: int,
        likes: int,
        saves: int,
        shares: int,
        comments: int,
        at: datetime,
        flush_id: str = "",
    ) -> None:
        for name, delta in zip(COUNTERS, (views, likes, saves, shares, comments), strict=True):
            self.counts[name] += delta
        if flush_id:
            self.recent_flushes.append(flush_id)
