"""Trending / explore feed: time-decayed engagement velocity of notes and products.

Each row keeps ranking.TrendKey's number, log2 Σ w · 2^(t / half_life): every row decays by the
same factor, so `ORDER BY mass DESC` on an index is the ranking at any moment, and no job
rescores rows as time passes. A note's counters arrive as coalesced deltas (one
`EngagementCounted` per note per flush), so the amount added is weight × delta at the flush's
time; a negative delta (an unlike) takes its amount back out, never below zero.

A product trends with the engagement on the notes that tag it, plus `purchase` per unit paid for.
Weights and the half-life are settings (REDCART_TRENDING_WEIGHTS as JSON, e.g.
'{"save": 6, "share": 6}', and REDCART_TRENDING_HALF_LIFE_HOURS). Saves and shares weigh more
than likes by default, as they show more intent (research/commerce.md §3.2: RED's own weights
are unpublished). The weights are folded into the stored numbers; after changing them,
`redcart projections rebuild trending` applies them to history, and the feed reports which
`score_version` it serves.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from commerce.domain.merchants import Product
from commerce.domain.notes import Note
from commerce.domain.orders import Order
from projections.product_page import dumps
from projections.read.ranking import TREND_EPOCH, EngagementWeights, TrendingConfig

if TYPE_CHECKING:
    from projections.registry import Generation

LISTED, REVISED = Product.Listed.TOPIC, Product.Revised.TOPIC  # type: ignore[attr-defined]
PLACED, PAID = Order.Placed.TOPIC, Order.Paid.TOPIC  # type: ignore[attr-defined]
POSTED, EDITED, DELETED, COUNTED = (
    getattr(Note, n).TOPIC for n in ("Posted", "Edited", "Deleted", "EngagementCounted")
)
COUNTERS = {"views": "view", "likes": "like", "saves": "save", "shares": "share",
            "comments": "comment"}  # fmt: skip


@dataclass(frozen=True)
class TrendWeights(EngagementWeights):
    """EngagementWeights plus what a feed also counts: views (off by default) and purchases."""

    view: float = 0.0
    purchase: float = 10.0
    version: str = "trend-v1"


def trending_config_from_env(env: Mapping[str, str]) -> TrendingConfig:
    given = json.loads(env.get("REDCART_TRENDING_WEIGHTS") or "{}")
    known = {f.name for f in fields(TrendWeights)} - {"version"}
    if not isinstance(given, dict) or set(given) - known:
        raise ValueError(f"REDCART_TRENDING_WEIGHTS: a JSON object with keys among {known}")
    hours = float(env.get("REDCART_TRENDING_HALF_LIFE_HOURS") or "6")
    if hours <= 0 or any(float(v) < 0 for v in given.values()):
        raise ValueError("trending weights and half-life must not be negative")
    weights = TrendWeights(**{k: float(v) for k, v in given.items()})
    canon = dumps([{f.name: getattr(weights, f.name) for f in fields(weights)}, hours])
    version = "trend-" + hashlib.sha256(canon.encode()).hexdigest()[:10]
    return TrendingConfig(
        weights=TrendWeights(**{k: float(v) for k, v in given.items()}, version=version),
        half_life=timedelta(hours=hours),
    )


def shift(mass: float | None, amount: float, at: datetime, config: TrendingConfig) -> float | None:
    """Add `amount` (weight × count, may be negative) at `at` to a log2 mass (None = zero)."""
    if amount == 0:
        return mass
    term = (at - TREND_EPOCH).total_seconds() / config.half_life.total_seconds()
    term += math.log2(abs(amount))
    if amount > 0:
        if mass is None:
            return term
        high, low = max(mass, term), min(mass, term)
        return high + math.log2(1.0 + 2.0 ** (low - high))
    if mass is None or term >= mass:
        return None
    return mass + math.log2(1.0 - 2.0 ** (term - mass))


def feed_sql(number: int) -> str:
    """The top of the feed for one kind: a backward scan of the (kind, mass) index."""
    return (
        f"SELECT item_id, title, mass FROM tr_items_g{number} WHERE kind = %s"  # noqa: S608
        " AND mass IS NOT NULL ORDER BY kind DESC, mass DESC, doc_key DESC LIMIT %s"
    )


class Trending:
    def __init__(self, gen: Generation) -> None:
        self.name = gen.name("trending")
        self.config = gen.config.trending
        self.items, self.notes = gen.name("tr_items"), gen.name("tr_notes")
        self.orders = gen.name("tr_orders")
        self.topics = (LISTED, REVISED, PLACED, PAID, POSTED, EDITED, DELETED, COUNTED)
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {self.items} (doc_key TEXT PRIMARY KEY, kind TEXT NOT"
            " NULL, item_id TEXT NOT NULL, title TEXT NOT NULL, mass DOUBLE PRECISION)",
            f"CREATE INDEX IF NOT EXISTS {self.items}_rank ON {self.items} (kind, mass, doc_key)",
            f"CREATE TABLE IF NOT EXISTS {self.notes} (id TEXT PRIMARY KEY, product_ids TEXT NOT"
            " NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.orders} (id TEXT PRIMARY KEY, lines TEXT NOT NULL)",
        )
        self.tables = (self.items, self.notes, self.orders)
        self.begin_batch(None)

    def begin_batch(self, cur: Any) -> None:
        self._masses: dict[str, float | None] = {}  # doc_key -> mass, written at end_batch

    def end_batch(self, cur: Any) -> None:
        for key, mass in sorted(self._masses.items()):
            cur.execute(f"UPDATE {self.items} SET mass = %s WHERE doc_key = %s", (mass, key))  # noqa: S608
        self.begin_batch(cur)

    def _add(self, cur: Any, kind: str, item_id: str, amount: float, at: datetime) -> None:
        key = f"{kind}:{item_id}"
        if key not in self._masses:
            cur.execute(f"SELECT mass FROM {self.items} WHERE doc_key = %s", (key,))  # noqa: S608
            row = cur.fetchone()
            if row is None:
                return
            self._masses[key] = None if row[0] is None else float(row[0])
        self._masses[key] = shift(self._masses[key], amount, at, self.config)

    def _item(self, cur: Any, kind: str, item_id: str, title: str) -> None:
        cur.execute(
            f"INSERT INTO {self.items} (doc_key, kind, item_id, title) VALUES (%s, %s, %s, %s)"  # noqa: S608
            " ON CONFLICT (doc_key) DO UPDATE SET title = excluded.title",
            (f"{kind}:{item_id}", kind, item_id, title),
        )

    def apply(self, cur: Any, event: Any, position: int) -> None:
        topic, oid = type(event).TOPIC, str(event.originator_id)
        weights = self.config.weights
        if topic == LISTED or (topic == REVISED and "title" in event.changes):
            title = event.title if topic == LISTED else event.changes["title"]
            self._item(cur, "product", oid, title)
        elif topic == PLACED:
            lines = [[ln["product_id"], ln["quantity"]] for ln in event.lines if "product_id" in ln]
            cur.execute(f"INSERT INTO {self.orders} (id, lines) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT (id) DO NOTHING", (oid, dumps(lines)))  # fmt: skip
        elif topic == PAID:
            cur.execute(f"SELECT lines FROM {self.orders} WHERE id = %s", (oid,))  # noqa: S608
            row = cur.fetchone()
            for pid, quantity in json.loads(row[0]) if row else []:
                self._add(cur, "product", pid, weights.of("purchase") * quantity, event.at)
        elif topic in (POSTED, EDITED):
            self._item(cur, "note", oid, event.title)
            tagged = list(dict.fromkeys(str(p) for p in event.product_ids))
            cur.execute(f"INSERT INTO {self.notes} (id, product_ids) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT (id) DO UPDATE SET product_ids = excluded.product_ids",
                        (oid, dumps(tagged)))  # fmt: skip
        elif topic == DELETED:
            cur.execute(f"DELETE FROM {self.items} WHERE doc_key = %s", (f"note:{oid}",))  # noqa: S608
            self._masses.pop(f"note:{oid}", None)
            cur.execute(f"DELETE FROM {self.notes} WHERE id = %s", (oid,))  # noqa: S608
        elif topic == COUNTED:
            cur.execute(f"SELECT product_ids FROM {self.notes} WHERE id = %s", (oid,))  # noqa: S608
            row = cur.fetchone()
            tagged = json.loads(row[0]) if row else []
            # all counters of one flush share its time, so their weighted sum is one amount
            amount = sum(weights.of(kind) * getattr(event, f) for f, kind in COUNTERS.items())
            for item_kind, item_id in (("note", oid), *(("product", p) for p in tagged)):
                self._add(cur, item_kind, item_id, amount, event.at)
