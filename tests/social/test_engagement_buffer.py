"""The engagement buffer without HTTP: an in-memory (POPO) Commerce app, the real group-commit
writer, and the like/save ledger in a SQLite view store."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.application import Commerce
from commerce.config import CommerceConfig
from commerce.domain.errors import NotFound
from commerce.domain.journeys import NOTE_VIEW
from commerce.platform.groupcommit import GroupCommitWriter, WriterUnavailable
from commerce.services import social
from commerce.services.engagement import (
    LIKE,
    SAVE,
    SHARE,
    TOUCH,
    UNLIKE,
    UNSAVE,
    Click,
    EngagementBuffer,
)
from commerce.services.engagement_ledger import flush_reached
from projections.sqlstore import SqliteStore

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class Rig:
    app: Commerce
    writer: GroupCommitWriter
    cfg: CommerceConfig
    buffer: EngagementBuffer

    def note(self, author: UUID | None = None) -> UUID:
        answer = self.writer.execute(
            social.post_note, self.cfg, None, author or uuid4(), "t", "", [], []
        )
        return UUID(answer.body["id"])

    def flush(self, *clicks: Click) -> list[Any]:
        self.buffer._flush_safely(list(clicks))
        return [c.future.exception() or c.future.result() for c in clicks]

    def counted(self, note_id: UUID) -> list[Any]:
        return [e for e in self.app.events.get(note_id) if hasattr(e, "flush_id")]

    def counts(self, note_id: UUID) -> dict[str, int]:
        return self.app.repository.get(note_id).counts


@contextmanager
def rig() -> Iterator[Rig]:
    with tempfile.TemporaryDirectory() as tmp:
        app = Commerce(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        writer = GroupCommitWriter(app).start()
        cfg = CommerceConfig(secret_key=b"k", clock=lambda: T0)
        buffer = EngagementBuffer(writer, SqliteStore(Path(tmp) / "views.db"), app, cfg)
        buffer.ledger.migrate()
        try:
            yield Rig(app, writer, cfg, buffer)
        finally:
            writer.stop()


@pytest.fixture
def r() -> Iterator[Rig]:
    with rig() as built:
        yield built


def test_a_repeated_like_counts_once_and_an_unlike_undoes_it(r: Rig) -> None:
    note, alice, bob = r.note(), uuid4(), uuid4()
    first = r.flush(Click(LIKE, alice, note), Click(LIKE, alice, note), Click(LIKE, bob, note))
    assert [a["liked"] for a in first] == [True, True, True]
    assert first[-1]["counts"]["likes"] == 2
    r.flush(Click(LIKE, alice, note))  # again, in a later flush: nothing changes, nothing written
    assert len(r.counted(note)) == 1
    [answer] = r.flush(Click(UNLIKE, alice, note))
    assert answer == {"note_id": str(note), "liked": False, "counts": r.counts(note)}
    assert r.counts(note)["likes"] == 1
    assert r.buffer.ledger.totals(note) == {"likes": 1, "saves": 0}
    assert r.buffer.ledger.pending() == 0


def test_one_flush_is_one_event_per_note_and_one_per_buyer(r: Rig) -> None:
    notes, buyers = [r.note(), r.note()], [uuid4() for _ in range(30)]
    clicks = [Click(kind, b, n) for b in buyers for n in notes for kind in (LIKE, SAVE, SHARE)]
    clicks += [
        Click(TOUCH, b, n, social.Touch(NOTE_VIEW, str(n))) for b in buyers[:5] for n in notes
    ]
    before = r.app.recorder.max_notification_id()
    r.flush(*clicks)
    written = r.app.recorder.select_notifications(before + 1, 1000)
    per_topic: dict[str, int] = {}
    for n in written:
        per_topic[n.topic] = per_topic.get(n.topic, 0) + 1
    assert per_topic == {
        "commerce.Note.EngagementCounted": 2,
        "commerce.Journey.Started": 5,
        "commerce.Journey.TouchpointsRecorded": 5,
    }
    assert r.counts(notes[0]) == {"views": 5, "likes": 30, "saves": 30, "shares": 30, "comments": 0}


def test_clicks_on_missing_or_deleted_notes_are_404_and_write_nothing(r: Rig) -> None:
    author = uuid4()
    note = r.note(author)
    r.writer.execute(social.delete_note, r.cfg, author, note)
    before = r.app.recorder.max_notification_id()
    answers = r.flush(
        Click(LIKE, uuid4(), note), Click(SAVE, uuid4(), uuid4()), Click(SHARE, uuid4(), note)
    )
    assert all(isinstance(a, NotFound) for a in answers)
    assert r.app.recorder.max_notification_id() == before
    assert r.buffer.ledger.store.query("SELECT COUNT(*) FROM social_note_engagement")[0][0] == 0


def test_a_flush_interrupted_before_its_count_is_finished_by_recovery(r: Rig) -> None:
    note, users = r.note(), [uuid4() for _ in range(3)]
    wanted = {(note, u): {"liked": True} for u in users}  # the view store committed; then a crash
    r.buffer.ledger.apply("crashed", wanted, T0.timestamp() - 120)
    assert r.counts(note)["likes"] == 0 and r.buffer.ledger.pending() == 1
    assert r.buffer.recover(older_than=60) == 1
    assert r.counts(note)["likes"] == 3 == r.buffer.ledger.totals(note)["likes"]
    assert r.buffer.recover(older_than=0) == 0 and r.counts(note)["likes"] == 3


def test_a_flush_that_committed_but_kept_its_pending_row_is_not_counted_twice(r: Rig) -> None:
    note = r.note()
    r.buffer.ledger.forget = lambda flush_id: None  # type: ignore[method-assign]  # dies first
    r.flush(Click(LIKE, uuid4(), note))
    assert r.buffer.ledger.pending() == 1
    [counted] = r.counted(note)
    assert flush_reached(r.app, note, counted.flush_id, T0.timestamp())
    for _ in range(70):  # push it out of the note's recent flushes: the stream is read instead
        r.flush(Click(SHARE, uuid4(), note))
    assert r.buffer.recover(older_than=0) == 1
    assert r.counts(note)["likes"] == 1


def test_a_view_store_failure_answers_503_and_counts_nothing(r: Rig) -> None:
    note = r.note()

    class Down:
        dialect = "sqlite"

        def transaction(self) -> Any:
            raise OSError("disk gone")

    r.buffer.ledger.store = Down()
    [answer] = r.flush(Click(LIKE, uuid4(), note))
    assert isinstance(answer, WriterUnavailable)
    assert r.counts(note)["likes"] == 0


def test_the_running_buffer_coalesces_concurrent_clicks(r: Rig) -> None:
    note, users = r.note(), [uuid4() for _ in range(120)]
    r.buffer.interval = 0.1
    r.buffer.start()
    barrier = threading.Barrier(len(users))

    def like(user: UUID) -> dict:
        barrier.wait()
        return r.buffer.execute(Click(LIKE, user, note))

    threads_out: list[dict] = []
    threads = [threading.Thread(target=lambda u=u: threads_out.append(like(u))) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r.buffer.stop()
    assert len(threads_out) == len(users) and all(a["liked"] for a in threads_out)
    assert r.counts(note)["likes"] == len(users)
    assert len(r.counted(note)) <= 5  # one event per flush, not per click


OPS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1), st.sampled_from([LIKE, UNLIKE, SAVE, UNSAVE])),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, cuts=st.lists(st.integers(1, 12), min_size=1, max_size=10))
def test_the_deltas_always_sum_to_each_users_final_state(
    ops: list[tuple[int, int, str]], cuts: list[int]
) -> None:
    with rig() as r:
        notes, users = [r.note(), r.note()], [uuid4() for _ in range(4)]
        state = {}  # the model: each click sets the user's flag; last one wins
        at, i = 0, 0
        while at < len(ops):
            chunk = ops[at : at + cuts[i % len(cuts)]]
            r.flush(*(Click(kind, users[u], notes[n]) for u, n, kind in chunk))
            for u, n, kind in chunk:
                field = "liked" if kind in (LIKE, UNLIKE) else "saved"
                state[(u, n, field)] = kind in (LIKE, SAVE)
            at, i = at + len(chunk), i + 1
        for n, note in enumerate(notes):
            sums = {"likes": 0, "saves": 0}
            for event in r.counted(note):
                sums["likes"] += event.likes
                sums["saves"] += event.saves
            expected = {
                "likes": sum(v for (_, m, f), v in state.items() if m == n and f == "liked"),
                "saves": sum(v for (_, m, f), v in state.items() if m == n and f == "saved"),
            }
            assert sums == expected == r.buffer.ledger.totals(note)
            counts = r.counts(note)
            assert {"likes": counts["likes"], "saves": counts["saves"]} == expected
            for u, user in enumerate(users):
                mine = r.buffer.ledger.state_of(note, user)
                assert mine["liked"] == state.get((u, n, "liked"), False)
                assert mine["saved"] == state.get((u, n, "saved"), False)
