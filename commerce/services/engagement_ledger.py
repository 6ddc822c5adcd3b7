"""Who likes and saves which note: one row per (note, user) in the read-model store.

Why a table and not the note: a popular note's likers would make its state, and every load of
it, grow with its audience; a row per pair costs the same for the millionth liker as the first.
Why it is still exact: the rows are changed only here, each under a row lock taken in key
order, and only a change of a row becomes a count delta. So a user likes a note at most once,
whatever they click and whichever process they reach, and the counts on the note's stream always
sum to the rows.

The event store and this store are two databases, so the flush that changes rows also keeps the
deltas they imply as a pending row, in the same transaction; the note's `EngagementCounted`
names the flush, and the pending row is dropped once that committed. `recover` finishes a flush
whose process died in between: it counts only what never reached the note's stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS social_note_engagement (note_id TEXT NOT NULL, user_id TEXT NOT"
    " NULL, liked INTEGER NOT NULL DEFAULT 0, saved INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (note_id, user_id))",
    "CREATE TABLE IF NOT EXISTS social_engagement_pending (flush_id TEXT PRIMARY KEY,"
    " created_at DOUBLE PRECISION NOT NULL, deltas TEXT NOT NULL)",
)
COUNTER = {"liked": "likes", "saved": "saves"}
CLOCK_SLACK = 300.0  # seconds processes' clocks may disagree when recovery reads `at` back
Pair = tuple[UUID, UUID]  # (note, user)
Deltas = dict[UUID, dict[str, int]]


class EngagementLedger:
    def __init__(self, store: Any) -> None:
        self.store = store

    def migrate(self) -> None:
        with self.store.transaction() as cur:
            for ddl in SCHEMA:
                cur.execute(ddl)

    def apply(
        self, flush_id: str, wanted: dict[Pair, dict[str, bool]], at: float
    ) -> tuple[Deltas, dict[Pair, dict[str, bool]], bool]:
        """Set each user's like/save to what they asked last. Answers the count deltas that
        makes, every pair's resulting state, and whether a pending row now awaits `forget`."""
        pairs = sorted(wanted, key=lambda p: (str(p[0]), str(p[1])))
        keys = [(str(n), str(u)) for n, u in pairs]
        deltas: Deltas = {}
        finals: dict[Pair, dict[str, bool]] = {}
        with self.store.transaction() as cur:
            current = self._lock_rows(cur, keys)
            changed = []
            for pair, key in zip(pairs, keys, strict=True):
                liked, saved = current.get(key, (0, 0))
                old = {"liked": bool(liked), "saved": bool(saved)}
                new = finals[pair] = old | wanted[pair]
                for name, counter in COUNTER.items():
                    if new[name] != old[name]:
                        tally = deltas.setdefault(pair[0], {})
                        tally[counter] = tally.get(counter, 0) + (1 if new[name] else -1)
                if new != old:
                    changed.append((int(new["liked"]), int(new["saved"]), *key))
            self._write_rows(cur, changed)
            if changed:
                cur.execute(
                    "INSERT INTO social_engagement_pending (flush_id, created_at, deltas)"
                    " VALUES (%s, %s, %s)",
                    (flush_id, at, json.dumps({str(n): d for n, d in deltas.items()})),
                )
        return deltas, finals, bool(changed)

    def _lock_rows(self, cur: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
        if self.store.dialect == "postgres":
            notes, users = [k[0] for k in keys], [k[1] for k in keys]
            cur.execute(
                "INSERT INTO social_note_engagement (note_id, user_id) SELECT * FROM"
                " unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
                (notes, users),
            )
            cur.execute(
                "SELECT note_id, user_id, liked, saved FROM social_note_engagement WHERE"
                " (note_id, user_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                " ORDER BY note_id, user_id FOR UPDATE",
                (notes, users),
            )
            return {(r[0], r[1]): (r[2], r[3]) for r in cur.fetchall()}
        found = {}  # SQLite: BEGIN IMMEDIATE already made this transaction the only writer
        for key in keys:
            cur.execute(
                "SELECT liked, saved FROM social_note_engagement WHERE note_id = %s AND"
                " user_id = %s",
                key,
            )
            row = cur.fetchone()
            if row is not None:
                found[key] = (row[0], row[1])
        return found

    def _write_rows(self, cur: Any, rows: list[tuple[int, int, str, str]]) -> None:
        if not rows:
            return
        if self.store.dialect == "postgres":
            cur.execute(
                "UPDATE social_note_engagement AS e SET liked = u.liked, saved = u.saved FROM"
                " unnest(%s::int[], %s::int[], %s::text[], %s::text[])"
                " AS u(liked, saved, note_id, user_id)"
                " WHERE e.note_id = u.note_id AND e.user_id = u.user_id",
                tuple(list(column) for column in zip(*rows, strict=True)),
            )
            return
        cur.executemany(
            "INSERT INTO social_note_engagement (liked, saved, note_id, user_id) VALUES"
            " (%s, %s, %s, %s) ON CONFLICT (note_id, user_id) DO UPDATE SET"
            " liked = excluded.liked, saved = excluded.saved",
            rows,
        )

    def state_of(self, note_id: UUID, user_id: UUID) -> dict[str, bool]:
        rows = self.store.query(
            "SELECT liked, saved FROM social_note_engagement WHERE note_id = %s AND user_id = %s",
            (str(note_id), str(user_id)),
        )
        liked, saved = rows[0] if rows else (0, 0)
        return {"liked": bool(liked), "saved": bool(saved)}

    def totals(self, note_id: UUID) -> dict[str, int]:
        """What the rows say a note's like and save counts are (for checks and tests)."""
        rows = self.store.query(
            "SELECT COALESCE(SUM(liked), 0), COALESCE(SUM(saved), 0) FROM"
            " social_note_engagement WHERE note_id = %s",
            (str(note_id),),
        )
        return {"likes": int(rows[0][0]), "saves": int(rows[0][1])}

    def forget(self, flush_id: str) -> None:
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM social_engagement_pending WHERE flush_id = %s", (flush_id,))

    def pending(self) -> int:
        return int(self.store.query("SELECT COUNT(*) FROM social_engagement_pending")[0][0])

    def recover(
        self,
        before: float,
        reached: Callable[[UUID, str, float], bool],
        count: Callable[[str, Deltas], None],
    ) -> int:
        """Finish the pending flushes begun before `before`: `count` what `reached` says never
        made it to the note's stream.

        The rows are deleted in the transaction that stays open while their counts are saved,
        so of several processes only one recovers each, and a crash here leaves them pending.
        """
        with self.store.transaction() as cur:
            cur.execute(
                "DELETE FROM social_engagement_pending WHERE created_at <= %s"
                " RETURNING flush_id, created_at, deltas",
                (before,),
            )
            rows = cur.fetchall()
            for flush_id, created_at, body in rows:
                deltas = {UUID(n): d for n, d in json.loads(body).items()}
                missing = {n: d for n, d in deltas.items() if not reached(n, flush_id, created_at)}
                if missing:
                    count(flush_id, missing)
        return len(rows)


def flush_reached(app: Any, note_id: UUID, flush_id: str, created_at: float) -> bool:
    """Whether the note's stream holds this flush's count: read newest first, back to a little
    before the flush began."""
    lte = None
    while True:
        events = list(app.events.get(note_id, lte=lte, desc=True, limit=500))
        for event in events:
            if getattr(event, "flush_id", None) == flush_id:
                return True
            if event.at.timestamp() < created_at - CLOCK_SLACK:
                return False
        if len(events) < 500:
            return False
        lte = events[-1].originator_version - 1
