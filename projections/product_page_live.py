"""The Livestream feed of the product page: which sessions feature a product, now or soon.

It follows the Livestream log with its own tracking row and writes only its own tables (pins,
sessions, and the per-product and per-merchant lists the page reads), so it never contends with
the Commerce feed for a row. "Featuring it" means pinned on screen in a live session right now;
the page also lists the host merchant's live and scheduled sessions, since a session is
scheduled before anything is pinned.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from livestream.domain.sessions import LiveSession
from projections.product_page import PageTables, dumps

if TYPE_CHECKING:
    from projections.registry import Generation

MERCHANT_SESSIONS = 20

LIVE_TOPICS = {
    name: getattr(LiveSession, name).TOPIC
    for name in ("Scheduled", "Started", "ProductPinned", "ProductUnpinned", "Ended", "Cancelled")
}
NAMES = {topic: name for name, topic in LIVE_TOPICS.items()}


class ProductPageLive:
    """The Livestream feed of the product page: which sessions feature a product."""

    def __init__(self, gen: Generation) -> None:
        t = self.t = PageTables(gen)
        self.name = gen.name("product_page_live")
        self.topics = tuple(LIVE_TOPICS.values())
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {t.sessions} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.pins} (product_id TEXT NOT NULL, session_id TEXT NOT"
            " NULL, PRIMARY KEY (product_id, session_id))",
            f"CREATE TABLE IF NOT EXISTS {t.live} (product_id TEXT PRIMARY KEY,"
            " sessions TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.merchant_live} (merchant_id TEXT PRIMARY KEY,"
            " sessions TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.hosted} (merchant_id TEXT NOT NULL, session_id TEXT"
            " NOT NULL, PRIMARY KEY (merchant_id, session_id))",
        )
        self.tables = (t.sessions, t.pins, t.live, t.merchant_live, t.hosted)
        self.begin_batch(None)

    def begin_batch(self, cur: Any) -> None:
        self._sessions: dict[str, dict] = {}
        self._products: set[str] = set()
        self._merchants: set[str] = set()

    def _session(self, cur: Any, sid: str) -> dict | None:
        if sid not in self._sessions:
            cur.execute(f"SELECT doc FROM {self.t.sessions} WHERE id = %s", (sid,))  # noqa: S608
            row = cur.fetchone()
            if row is None:
                return None
            self._sessions[sid] = json.loads(row[0])
        return self._sessions[sid]

    def apply(self, cur: Any, event: Any, position: int) -> None:
        name = NAMES[type(event).TOPIC]
        sid, t = str(event.originator_id), self.t
        if name == "Scheduled":
            self._sessions[sid] = {
                "id": sid, "host_merchant_id": str(event.host_merchant_id), "title": event.title,
                "state": "scheduled", "starts_at": event.starts_at.timestamp(), "started_at": None,
                "pinned": [],
            }  # fmt: skip
            cur.execute(f"INSERT INTO {t.hosted} (merchant_id, session_id) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT DO NOTHING", (str(event.host_merchant_id), sid))  # fmt: skip
        session = self._session(cur, sid)
        if session is None:
            return
        # lists embed the whole session: whatever changes it changes every product it pins
        self._merchants.add(session["host_merchant_id"])
        self._products.update(session["pinned"])
        if name == "Started":
            session |= {"state": "live", "started_at": event.at.timestamp()}
        elif name == "ProductPinned":
            session["pinned"] = [*session["pinned"], str(event.product_id)]
            cur.execute(f"INSERT INTO {t.pins} (product_id, session_id) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT DO NOTHING", (str(event.product_id), sid))  # fmt: skip
            self._products.add(str(event.product_id))
        elif name in ("ProductUnpinned", "Ended", "Cancelled"):
            gone = [str(event.product_id)] if name == "ProductUnpinned" else session["pinned"]
            session["pinned"] = [p for p in session["pinned"] if p not in gone]
            for pid in gone:
                cur.execute(f"DELETE FROM {t.pins} WHERE product_id = %s AND session_id = %s",  # noqa: S608
                            (pid, sid))  # fmt: skip
            self._products.update(gone)
            if name != "ProductUnpinned":  # over: off the merchant's list for good
                session["state"] = "ended" if name == "Ended" else "cancelled"
                cur.execute(f"DELETE FROM {t.hosted} WHERE merchant_id = %s AND session_id = %s",  # noqa: S608
                            (session["host_merchant_id"], sid))  # fmt: skip

    def end_batch(self, cur: Any) -> None:
        t = self.t
        for sid, session in sorted(self._sessions.items()):
            cur.execute(f"INSERT INTO {t.sessions} (id, doc) VALUES (%s, %s) ON CONFLICT (id)"  # noqa: S608
                        " DO UPDATE SET doc = excluded.doc", (sid, dumps(session)))  # fmt: skip
        for table, key, ids, join in (
            (t.live, "product_id", self._products, t.pins),
            (t.merchant_live, "merchant_id", self._merchants, t.hosted),
        ):
            for owner in sorted(ids):
                cur.execute(f"SELECT s.doc FROM {join} j JOIN {t.sessions} s ON s.id = j.session_id"  # noqa: S608
                            f" WHERE j.{key} = %s", (owner,))  # fmt: skip
                docs = [json.loads(row[0]) for row in cur.fetchall()]
                docs = [d for d in docs if d["state"] in ("scheduled", "live")]
                docs.sort(key=lambda d: (d["starts_at"], d["id"]))
                cur.execute(f"DELETE FROM {table} WHERE {key} = %s", (owner,))  # noqa: S608
                if docs:
                    cur.execute(f"INSERT INTO {table} ({key}, sessions) VALUES (%s, %s)",  # noqa: S608
                                (owner, dumps(docs[:MERCHANT_SESSIONS])))  # fmt: skip
        self.begin_batch(cur)
