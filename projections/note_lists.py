"""Notes listed by their author (a profile page) and by the products they tag, newest first.

The product page ranks a product's best notes; this view lists them all, and lists what one
user has posted, with the counts a list shows (likes, saves, comments…). `seq` is the
notification id of the `Posted` event: a stable, unique sort key for cursor pagination.
Counts arrive as coalesced deltas (one `EngagementCounted` per note per flush), so keeping
them costs one row update per note per flush, not one per click.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from commerce.domain.notes import COUNTERS, Note

if TYPE_CHECKING:
    from projections.registry import Generation

POSTED, EDITED, DELETED, COUNTED = (
    getattr(Note, n).TOPIC for n in ("Posted", "Edited", "Deleted", "EngagementCounted")
)
LIST_COLUMNS = "n.id, n.author_id, n.seq, n.body, " + ", ".join(f"n.{c}" for c in COUNTERS)


def by_author_sql(number: int) -> str:
    return (
        f"SELECT {LIST_COLUMNS} FROM nl_notes_g{number} n WHERE n.author_id = %s"  # noqa: S608
        " AND n.seq < %s ORDER BY n.seq DESC LIMIT %s"
    )


def by_product_sql(number: int) -> str:
    return (
        f"SELECT {LIST_COLUMNS} FROM nl_tags_g{number} t JOIN nl_notes_g{number} n"  # noqa: S608
        " ON n.id = t.note_id WHERE t.product_id = %s AND t.seq < %s ORDER BY t.seq DESC LIMIT %s"
    )


def list_item(row: tuple) -> dict:
    note_id, author_id, _seq, body, *counts = row
    return (
        {"id": note_id, "author_id": author_id}
        | json.loads(body)
        | {"counts": dict(zip(COUNTERS, (int(c) for c in counts), strict=True))}
    )


class NoteLists:
    def __init__(self, gen: Generation) -> None:
        self.name = gen.name("note_lists")
        self.notes, self.tags = gen.name("nl_notes"), gen.name("nl_tags")
        self.topics = (POSTED, EDITED, DELETED, COUNTED)
        counters = ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in COUNTERS)
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {self.notes} (id TEXT PRIMARY KEY, author_id TEXT NOT"
            f" NULL, seq BIGINT NOT NULL, body TEXT NOT NULL, {counters})",
            f"CREATE INDEX IF NOT EXISTS {self.notes}_author ON {self.notes} (author_id, seq)",
            f"CREATE TABLE IF NOT EXISTS {self.tags} (product_id TEXT NOT NULL, note_id TEXT NOT"
            " NULL, seq BIGINT NOT NULL, PRIMARY KEY (product_id, note_id))",
            f"CREATE INDEX IF NOT EXISTS {self.tags}_seq ON {self.tags} (product_id, seq)",
        )
        self.tables = (self.notes, self.tags)

    def apply(self, cur: Any, event: Any, position: int) -> None:
        topic, oid = type(event).TOPIC, str(event.originator_id)
        if topic == COUNTED:
            adds = ", ".join(f"{c} = {c} + %s" for c in COUNTERS)
            cur.execute(f"UPDATE {self.notes} SET {adds} WHERE id = %s",  # noqa: S608
                        (*(getattr(event, c) for c in COUNTERS), oid))  # fmt: skip
            return
        if topic == DELETED:
            cur.execute(f"DELETE FROM {self.tags} WHERE note_id = %s", (oid,))  # noqa: S608
            cur.execute(f"DELETE FROM {self.notes} WHERE id = %s", (oid,))  # noqa: S608
            return
        body = json.dumps(
            {
                "title": event.title,
                "hashtags": list(event.hashtags),
                "cover": event.image_refs[0] if event.image_refs else None,
                "product_ids": [str(p) for p in event.product_ids],
                "posted_at" if topic == POSTED else "edited_at": event.at.isoformat(),
            },
            ensure_ascii=False,
        )
        if topic == POSTED:
            cur.execute(
                f"INSERT INTO {self.notes} (id, author_id, seq, body) VALUES (%s, %s, %s, %s)"  # noqa: S608
                " ON CONFLICT (id) DO NOTHING",
                (oid, str(event.author_id), position, body),
            )
            seq = position
        else:
            cur.execute(f"SELECT seq, body FROM {self.notes} WHERE id = %s", (oid,))  # noqa: S608
            row = cur.fetchone()
            if row is None:
                return
            seq = int(row[0])
            posted = json.loads(row[1]).get("posted_at")
            body = json.dumps(json.loads(body) | {"posted_at": posted}, ensure_ascii=False)
            cur.execute(f"UPDATE {self.notes} SET body = %s WHERE id = %s", (body, oid))  # noqa: S608
            cur.execute(f"DELETE FROM {self.tags} WHERE note_id = %s", (oid,))  # noqa: S608
        for pid in dict.fromkeys(str(p) for p in event.product_ids):
            cur.execute(f"INSERT INTO {self.tags} (product_id, note_id, seq) VALUES (%s, %s, %s)"  # noqa: S608
                        " ON CONFLICT DO NOTHING", (pid, oid, seq))  # fmt: skip
