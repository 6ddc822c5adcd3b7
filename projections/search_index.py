"""The search read model: feeds projections.read.search's SearchIndex from the Commerce log.

SearchIndex's SQL names its tables (`search_docs`, and `search_text` for SQLite's FTS5). A
blue/green generation needs its own copy, so `Renamed` rewrites those three identifiers to the
generation's names at the SQL seam (store and cursor), and the tested search SQL is used as it
is, not forked.

What is indexed:
- products: title, brand and category as text; facets category, brand, origin country and
  in stock (on hand minus every hold, pending ones included: a lapsed hold stops counting when
  the sweeper records its expiry, seconds later); engagement = the trending weights applied to
  the notes that tag the product, plus `purchase` per unit sold.
- notes: title, body and hashtags; engagement = the same weights over its counters.
Products are re-indexed once per batch (stock moves often); a note's counters only update its
engagement, never its text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from commerce.domain.merchants import Product
from commerce.domain.notes import Note
from commerce.domain.orders import Order
from projections.product_page import dumps
from projections.product_page_stock import STOCK_TOPICS, StockLedger
from projections.read.search import SearchIndex
from projections.sqlstore import SqlStore

if TYPE_CHECKING:
    from projections.registry import Generation

_NAMES = re.compile(r"\b(search_docs_text_trgm|search_docs|search_text)\b")
LISTED, REVISED = Product.Listed.TOPIC, Product.Revised.TOPIC  # type: ignore[attr-defined]
PLACED, PAID, REFUNDED = (getattr(Order, n).TOPIC for n in ("Placed", "Paid", "Refunded"))
POSTED, EDITED, DELETED, COUNTED = (
    getattr(Note, n).TOPIC for n in ("Posted", "Edited", "Deleted", "EngagementCounted")
)


class Renamed(SqlStore):
    """A store (or, with `store=None`, just a dialect for cursors) whose SQL names this
    generation's search tables."""

    def __init__(self, dialect: str, suffix: str, store: SqlStore | None = None) -> None:
        self.dialect = dialect
        self.suffix = suffix
        self.store = store

    def sql(self, text: str) -> str:
        return _NAMES.sub(lambda m: m.group(1) + self.suffix, text)

    def cursor(self, cur: Any) -> _Cursor:
        return _Cursor(cur, self)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        assert self.store is not None
        with self.store.transaction() as cur:
            yield _Cursor(cur, self)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        assert self.store is not None
        return self.store.query(self.sql(sql), params)


class _Cursor:
    def __init__(self, cur: Any, names: Renamed) -> None:
        self._cur, self._names = cur, names

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(self._names.sql(sql), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()


def search_index(store: SqlStore, generation: int) -> SearchIndex:
    """The index of `generation`, for reading (projections.api)."""
    return SearchIndex(Renamed(store.dialect, f"_g{generation}", store))


class SearchFeed:
    def __init__(self, gen: Generation) -> None:
        self.name = gen.name("search")
        self.names = Renamed(gen.dialect, f"_g{gen.number}")
        self.index = SearchIndex(self.names)
        self.weights = gen.config.trending.weights
        self.products, self.notes = gen.name("sx_products"), gen.name("sx_notes")
        self.ledger = StockLedger(gen.name("sx_stocks"), gen.name("sx_holds"))
        self.topics = (LISTED, REVISED, PAID, PLACED, REFUNDED, POSTED, EDITED, DELETED, COUNTED,
                       *STOCK_TOPICS)  # fmt: skip
        self.schema = (
            *(self.names.sql(ddl) for ddl in self.index.schema()),
            f"CREATE TABLE IF NOT EXISTS {self.products} (id TEXT PRIMARY KEY,"
            " state TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.notes} (id TEXT PRIMARY KEY, engagement DOUBLE"
            " PRECISION NOT NULL, product_ids TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {gen.name('sx_orders')} (id TEXT PRIMARY KEY,"
            " lines TEXT NOT NULL)",
            *self.ledger.schema(),
        )
        self.orders = gen.name("sx_orders")
        text = ("search_text",) if gen.dialect == "sqlite" else ()
        self.tables = (*(self.names.sql(t) for t in ("search_docs", *text)), self.products,
                       self.notes, self.orders, *self.ledger.tables())  # fmt: skip
        self.begin_batch(None)

    def begin_batch(self, cur: Any) -> None:
        self._states: dict[str, dict | None] = {}
        self._dirty: set[str] = set()

    def _state(self, cur: Any, pid: str) -> dict | None:
        if pid not in self._states:
            cur.execute(f"SELECT state FROM {self.products} WHERE id = %s", (pid,))  # noqa: S608
            row = cur.fetchone()
            self._states[pid] = json.loads(row[0]) if row else None
        return self._states[pid]

    def _engagement(self, event: Any) -> float:
        return self.weights.weighted(
            {"view": event.views, "like": event.likes, "save": event.saves,
             "share": event.shares, "comment": event.comments}
        )  # fmt: skip

    def _move(self, cur: Any, product_ids: list[str], amount: float) -> None:
        for pid in product_ids:
            state = self._state(cur, pid)
            if state is not None and amount:
                state["notes"] += amount
                self._dirty.add(pid)

    def apply(self, cur: Any, event: Any, position: int) -> None:
        topic, oid = type(event).TOPIC, str(event.originator_id)
        if topic in STOCK_TOPICS:
            pid = self.ledger.apply(cur, topic, event)
            if pid is not None and self._state(cur, pid) is not None:
                self._dirty.add(pid)
        elif topic == LISTED:
            self._states[oid] = {
                "title": event.title, "brand": event.brand, "category": event.category,
                "origin_country": event.origin_country, "sold": 0, "notes": 0.0,
            }  # fmt: skip
            self._dirty.add(oid)
        elif topic == REVISED:
            state = self._state(cur, oid)
            if state is not None:
                state.update({k: v for k, v in event.changes.items() if k in state})
                self._dirty.add(oid)
        elif topic == PLACED:
            lines = [[ln["product_id"], ln["quantity"]] for ln in event.lines if "product_id" in ln]
            cur.execute(f"INSERT INTO {self.orders} (id, lines) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT (id) DO NOTHING", (oid, dumps(lines)))  # fmt: skip
        elif topic == PAID or (topic == REFUNDED and event.full):
            cur.execute(f"SELECT lines FROM {self.orders} WHERE id = %s", (oid,))  # noqa: S608
            row = cur.fetchone()
            for pid, quantity in json.loads(row[0]) if row else []:
                state = self._state(cur, pid)
                if state is not None:
                    state["sold"] += quantity if topic == PAID else -quantity
                    self._dirty.add(pid)
        elif topic in (POSTED, EDITED, DELETED, COUNTED):
            self._note(cur, topic, oid, event)

    def _note(self, cur: Any, topic: str, oid: str, event: Any) -> None:
        cur.execute(f"SELECT engagement, product_ids FROM {self.notes} WHERE id = %s", (oid,))  # noqa: S608
        row = cur.fetchone()
        engagement, tagged = (float(row[0]), json.loads(row[1])) if row else (0.0, [])
        if topic == COUNTED:
            delta = self._engagement(event)
            self._move(cur, tagged, delta)
            engagement += delta
            self.index.set_engagement(self.names.cursor(cur), "note", oid, engagement)
        elif topic == DELETED:
            self._move(cur, tagged, -engagement)
            self.index.delete(self.names.cursor(cur), "note", oid)
            cur.execute(f"DELETE FROM {self.notes} WHERE id = %s", (oid,))  # noqa: S608
            return
        else:  # posted or edited: whole new content, perhaps other products
            self._move(cur, tagged, -engagement)
            tagged = list(dict.fromkeys(str(p) for p in event.product_ids))
            self._move(cur, tagged, engagement)
            self.index.upsert_note(self.names.cursor(cur), oid, event.title, event.body,
                                   event.hashtags, engagement)  # fmt: skip
        cur.execute(
            f"INSERT INTO {self.notes} (id, engagement, product_ids) VALUES (%s, %s, %s)"  # noqa: S608
            " ON CONFLICT (id) DO UPDATE SET engagement = excluded.engagement,"
            " product_ids = excluded.product_ids",
            (oid, engagement, dumps(tagged)),
        )

    def end_batch(self, cur: Any) -> None:
        renamed = self.names.cursor(cur)
        purchase = self.weights.of("purchase")
        for pid in sorted(self._dirty):
            state = self._state(cur, pid)
            assert state is not None
            cur.execute(
                f"INSERT INTO {self.products} (id, state) VALUES (%s, %s) ON CONFLICT (id)"  # noqa: S608
                " DO UPDATE SET state = excluded.state",
                (pid, dumps(state)),
            )
            free = sum(
                w["on_hand"] - w["held"] - sum(q for _, q in w["pending"])
                for w in self.ledger.summary(cur, pid)
            )
            engagement = state["notes"] + purchase * max(state["sold"], 0)
            self.index.upsert_product(renamed, pid, state["title"], state["brand"],
                                      state["category"], state["origin_country"], free > 0,
                                      engagement)  # fmt: skip
        self.begin_batch(cur)
