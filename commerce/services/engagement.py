"""Clicks on notes and buyers' touchpoints, coalesced into one event per note or buyer per flush.

Why: a like is worth nothing on its own yet arrives by the thousand per second; an event-store
transaction per click would hold the Commerce write lock for every tap (DESIGN.md decision 3).
Clicks wait in this process for at most `interval` (150 ms); then one flush turns them into one
`commerce.Note.EngagementCounted` per touched note (deltas) and one
`commerce.Journey.TouchpointsRecorded` per buyer, saved by the group-commit writer in one
transaction. A click is answered only after the flush holding it committed, so nothing
acknowledged is ever lost; a crash loses only clicks nobody was answered for. Likes and saves
are decided against each user's row in the read-model store first (commerce.services
.engagement_ledger), so a user likes a note at most once however often they click.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.errors import NotFound
from commerce.platform.groupcommit import GroupCommitWriter, WriterUnavailable
from commerce.services.engagement_ledger import EngagementLedger, flush_reached
from commerce.services.social import Flush, count_engagement, note_authors

log = logging.getLogger(__name__)

LIKE, UNLIKE, SAVE, UNSAVE, SHARE, COMMENT, TOUCH = (
    "like", "unlike", "save", "unsave", "share", "comment", "touch",
)  # fmt: skip
TOGGLES = {LIKE: ("liked", True), UNLIKE: ("liked", False),
           SAVE: ("saved", True), UNSAVE: ("saved", False)}  # fmt: skip


@dataclass
class Click:
    kind: str
    user_id: UUID
    note_id: UUID | None = None
    detail: Any = None  # a comment's (comment_id, text, Idempotency | None), or a Touch
    future: Future = field(default_factory=Future)


class EngagementBuffer:
    def __init__(
        self,
        writer: GroupCommitWriter,
        store: Any,
        app: Any,
        cfg: CommerceConfig,
        *,
        interval: float = 0.15,
        max_clicks: int = 5000,
        recover_every: float = 30.0,
        recover_after: float = 60.0,
    ) -> None:
        self.writer, self.app, self.cfg = writer, app, cfg
        self.ledger = EngagementLedger(store)
        self.interval, self.max_clicks = interval, max_clicks
        self.recover_every, self.recover_after = recover_every, recover_after
        self._queue: queue.SimpleQueue[Click | None] = queue.SimpleQueue()
        self._accepting = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = {"flushes": 0, "clicks": 0, "recovered": 0}

    @classmethod
    def of(cls, runtime: Any) -> EngagementBuffer:
        return cls(runtime.writer, runtime.store, runtime.app, runtime.cfg)

    def start(self) -> EngagementBuffer:
        for attempt in range(3):  # processes starting together may race on CREATE ... IF NOT EXISTS
            try:
                self.ledger.migrate()
                break
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        self._thread = threading.Thread(target=self._run, name="engagement", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Flush what is waiting, then stop; later clicks are refused (503)."""
        with self._accepting:
            self._stopping = True
            self._queue.put(None)
        if self._thread:
            self._thread.join(timeout=15)

    # -- submitting ----------------------------------------------------------------------------
    async def submit(self, click: Click) -> Any:
        """Resolves once the flush holding the click committed, with the click's answer."""
        return await asyncio.wrap_future(self._enqueue(click))

    def execute(self, click: Click) -> Any:
        return self._enqueue(click).result()

    def _enqueue(self, click: Click) -> Future:
        with self._accepting:
            if self._stopping:
                raise WriterUnavailable("engagement is shutting down")
            self._queue.put(click)
        return click.future

    # -- the flusher thread --------------------------------------------------------------------
    def _run(self) -> None:
        next_recovery = 0.0
        while True:
            if time.monotonic() >= next_recovery:
                self._recover_safely()
                next_recovery = time.monotonic() + self.recover_every
            try:
                first = self._queue.get(timeout=self.recover_every)
            except queue.Empty:
                continue
            if first is None:
                break
            batch, done = self._gather(first)
            self._flush_safely(batch)
            if done:
                break
        leftover = []
        while not self._queue.empty():
            click = self._queue.get_nowait()
            if click is not None:
                leftover.append(click)
        if leftover:
            self._flush_safely(leftover)

    def _gather(self, first: Click) -> tuple[list[Click], bool]:
        """The clicks of one window: from the first click, for `interval` seconds."""
        batch, deadline = [first], time.monotonic() + self.interval
        while len(batch) < self.max_clicks:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                click = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if click is None:
                return batch, True
            batch.append(click)
        return batch, False

    def _flush_safely(self, clicks: list[Click]) -> None:
        try:
            self.flush(clicks)
        except Exception as exc:
            if not isinstance(exc, WriterUnavailable):
                log.exception("engagement flush of %s clicks failed", len(clicks))
            failure = exc if isinstance(exc, WriterUnavailable) else WriterUnavailable(str(exc))
            for click in clicks:
                _settle(click, failure)

    def flush(self, clicks: list[Click]) -> None:
        flush_id = uuid4().hex
        note_ids = {c.note_id for c in clicks if c.note_id is not None}
        authors = (
            self.writer.execute(note_authors, self.cfg, note_ids, probe=tuple(note_ids))
            if note_ids
            else {}
        )
        toggles, shares, comments, touches = [], [], [], []
        for i, click in enumerate(clicks):
            if click.note_id is not None and click.note_id not in authors:
                _settle(click, NotFound("no such note", field="note_id"))
            elif click.kind in TOGGLES:
                toggles.append(click)
            elif click.kind == SHARE:
                shares.append(click)
            elif click.kind == COMMENT:
                comments.append((i, click.note_id, click.user_id, *click.detail))
            else:
                touches.append((i, click.user_id, click.detail))
        deltas, finals, pending = (
            self._apply_toggles(flush_id, toggles) if toggles else ({}, {}, False)
        )
        for click in shares:
            tally = deltas.setdefault(click.note_id, {})  # type: ignore[arg-type]
            tally["shares"] = tally.get("shares", 0) + 1
        for click in toggles:
            deltas.setdefault(click.note_id, {})  # type: ignore[arg-type]
        probe = {ids.creator_id(author) for author in authors.values()}
        probe |= {c[-1].record_id for c in comments if c[-1] is not None}
        result = self.writer.execute(
            count_engagement,
            self.cfg,
            Flush(flush_id, deltas, comments, touches),
            probe=tuple(probe),
        )
        self.stats["flushes"] += 1
        self.stats["clicks"] += len(clicks)
        for i, click in enumerate(clicks):
            if click.future.done():
                continue
            if click.note_id in result.gone:
                _settle(click, NotFound("no such note", field="note_id"))
            elif i in result.outcomes:
                _settle(click, result.outcomes[i])
            else:
                view = {"note_id": str(click.note_id), "counts": result.counts[click.note_id]}
                if click.kind in TOGGLES:
                    name = TOGGLES[click.kind][0]
                    view[name] = finals[(click.note_id, click.user_id)][name]
                _settle(click, view)
        if pending:
            try:
                self.ledger.forget(flush_id)
            except Exception:  # harmless: recovery finds the flush already counted
                log.warning("engagement: pending flush %s not dropped", flush_id)

    def _apply_toggles(self, flush_id: str, toggles: list[Click]) -> tuple[dict, dict, bool]:
        wanted: dict[tuple[UUID, UUID], dict[str, bool]] = {}
        for click in toggles:  # within a flush, a user's last click on a note wins
            name, value = TOGGLES[click.kind]
            wanted.setdefault((click.note_id, click.user_id), {})[name] = value  # type: ignore[index]
        try:
            return self.ledger.apply(flush_id, wanted, self.cfg.clock().timestamp())
        except Exception as exc:
            raise WriterUnavailable(
                f"the view store did not answer ({type(exc).__name__})"
            ) from exc

    # -- after a crash -------------------------------------------------------------------------
    def _recover_safely(self) -> None:
        try:
            self.recover(self.recover_after)
        except Exception:
            log.exception("engagement recovery failed; will retry")

    def recover(self, older_than: float) -> int:
        """Finish flushes left pending (by a crash, or a store that failed mid-flush) more than
        `older_than` seconds ago; any process may, and exactly one does."""

        def count(flush_id: str, deltas: dict) -> None:
            self.writer.execute(count_engagement, self.cfg, Flush(flush_id, deltas))

        def reached(note_id: UUID, flush_id: str, created_at: float) -> bool:
            return flush_reached(self.app, note_id, flush_id, created_at)

        before = self.cfg.clock().timestamp() - older_than
        recovered = self.ledger.recover(before, reached, count)
        self.stats["recovered"] += recovered
        return recovered


def _settle(click: Click, outcome: Any) -> None:
    if click.future.done():
        return
    if isinstance(outcome, BaseException):
        click.future.set_exception(outcome)
    else:
        click.future.set_result(outcome)
