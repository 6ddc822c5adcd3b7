"""The product page read model: everything one page shows, as a row per product.

Two feeds write it, each into its own tables, so they never touch the same rows:
- `ProductPage` (Commerce log): product core, offers of the same product by every merchant with
  the landed CNY price (goods + freight + CBEC tax, commerce.domain.pricing), stock per warehouse
  with its holds, notes that tag the product, the rating histogram, units sold.
- `ProductPageLive` (Livestream log): sessions pinning the product now, and the host merchant's
  scheduled and live sessions.
The API reads one page row plus three primary-key subqueries in one statement
(projections.api.pages) and computes what depends on the clock (availability, note order).

Offers: a product id is per merchant (uuid5(merchant, sku)), and there is no GTIN field yet. So
offers group by brand + title, NFKC-normalised, case-folded, punctuation and spaces removed: the
way cross-border resellers list the same brand item. An event carrying a `gtin` groups by it
instead, should Product ever get one. Each apply only marks which products and groups changed;
`end_batch` writes every changed page and offer list once per batch, not once per event.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commerce.domain.accounts import FxRate
from commerce.domain.merchants import WAREHOUSE_KINDS, Merchant, Product, Warehouse
from commerce.domain.notes import Note
from commerce.domain.orders import Order
from commerce.domain.pricing import (
    InvalidQuoteInput,
    LineInput,
    ShipmentInput,
    UnknownCurrency,
    quote_order,
)
from commerce.domain.reviews import Review
from projections.product_page_stock import STOCK_TOPICS, StockLedger
from projections.read.ranking import star_rating_lower_bound

if TYPE_CHECKING:
    from projections.registry import Generation

NOTES_BY_ENGAGEMENT, NOTES_NEWEST = 30, 20  # candidates kept; the API ranks them by age too
T = {  # topics, by what they are called here
    "merchant": Merchant.Onboarded.TOPIC,  # type: ignore[attr-defined]
    "warehouse": Warehouse.Opened.TOPIC,  # type: ignore[attr-defined]
    "listed": Product.Listed.TOPIC,  # type: ignore[attr-defined]
    "revised": Product.Revised.TOPIC,  # type: ignore[attr-defined]
    "fx_opened": FxRate.Opened.TOPIC,  # type: ignore[attr-defined]
    "fx_set": FxRate.RateSet.TOPIC,  # type: ignore[attr-defined]
    "placed": Order.Placed.TOPIC,  # type: ignore[attr-defined]
    "paid": Order.Paid.TOPIC,  # type: ignore[attr-defined]
    "refunded": Order.Refunded.TOPIC,  # type: ignore[attr-defined]
    "review": Review.Posted.TOPIC,  # type: ignore[attr-defined]
    "note_posted": Note.Posted.TOPIC,  # type: ignore[attr-defined]
    "note_edited": Note.Edited.TOPIC,  # type: ignore[attr-defined]
    "note_deleted": Note.Deleted.TOPIC,  # type: ignore[attr-defined]
    "note_counted": Note.EngagementCounted.TOPIC,  # type: ignore[attr-defined]
}
CORE = ("id", "merchant_id", "sku", "title", "brand", "category", "origin_country", "hs_code",
        "list_price_minor", "currency", "weight_grams")  # fmt: skip
REVISABLE = ("title", "brand", "category", "hs_code", "list_price_minor", "vat_rate",
             "consumption_tax_rate", "weight_grams")  # fmt: skip


def dumps(value: Any) -> str:
    """Canonical JSON: a rebuilt row equals the live-updated one byte for byte."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def group_key(brand: str, title: str, gtin: str | None = None) -> str:
    if gtin:
        return f"gtin:{gtin}"

    def norm(text: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())

    return f"{norm(brand)}|{norm(title)}"


def landed_price(state: dict, mode: str, rate: Decimal | None, config: Any) -> dict | None:
    """One unit delivered to a mainland buyer from a warehouse of `mode`, tax included."""
    currency = state["currency"]
    if rate is None and currency != "CNY":
        return None
    line = LineInput(state["sku"], 1, state["list_price_minor"], currency,
                     Decimal(state["vat_rate"]), Decimal(state["consumption_tax_rate"]),
                     state["weight_grams"])  # fmt: skip
    rates = {} if currency == "CNY" else {currency: rate}
    try:
        quote = quote_order([ShipmentInput(mode, "page", (line,))], rates, config.freight,
                            config.cbec)  # fmt: skip
    except (InvalidQuoteInput, UnknownCurrency):
        return None
    return {"goods_fen": quote.goods_fen, "freight_fen": quote.freight_fen,
            "tax_fen": quote.tax_fen, "total_fen": quote.total_fen}  # fmt: skip


@dataclass(frozen=True)
class PageTables:
    """Table names of one generation; both feeds and the reader use them."""

    gen: Generation

    def __getattr__(self, base: str) -> str:
        if base.startswith("_"):
            raise AttributeError(base)
        return self.gen.name(f"pp_{base}")


class ProductPage:
    """The Commerce feed of the product page (see the module docstring)."""

    def __init__(self, gen: Generation) -> None:
        t = self.t = PageTables(gen)
        self.name = gen.name("product_page")
        self.config = gen.config
        self.ledger = StockLedger(t.stocks, t.holds)
        self.topics = (*T.values(), *STOCK_TOPICS)
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {t.pages} (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL,"
            " group_key TEXT NOT NULL, doc TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.offers} (group_key TEXT PRIMARY KEY,"
            " offers TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.products} (id TEXT PRIMARY KEY, currency TEXT NOT NULL,"
            " group_key TEXT NOT NULL, state TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {t.products}_group ON {t.products} (group_key)",
            f"CREATE INDEX IF NOT EXISTS {t.products}_currency ON {t.products} (currency)",
            f"CREATE TABLE IF NOT EXISTS {t.merchants} (id TEXT PRIMARY KEY, name TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.warehouses} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.fx} (id TEXT PRIMARY KEY, currency TEXT NOT NULL,"
            " rate TEXT)",
            f"CREATE TABLE IF NOT EXISTS {t.orders} (id TEXT PRIMARY KEY, buyer_id TEXT NOT NULL,"
            " lines TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.purchases} (buyer_id TEXT NOT NULL, product_id TEXT"
            " NOT NULL, PRIMARY KEY (buyer_id, product_id))",
            f"CREATE TABLE IF NOT EXISTS {t.notes} (id TEXT PRIMARY KEY, author_id TEXT NOT NULL,"
            " title TEXT NOT NULL, posted_at DOUBLE PRECISION NOT NULL, views BIGINT NOT NULL,"
            " likes BIGINT NOT NULL, saves BIGINT NOT NULL, shares BIGINT NOT NULL,"
            " comments BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.note_tags} (product_id TEXT NOT NULL, note_id TEXT NOT"
            " NULL, PRIMARY KEY (product_id, note_id))",
            f"CREATE INDEX IF NOT EXISTS {t.note_tags}_note ON {t.note_tags} (note_id)",
            *self.ledger.schema(),
        )
        self.tables = (t.pages, t.offers, t.products, t.merchants, t.warehouses, t.fx, t.orders,
                       t.purchases, t.notes, t.note_tags, *self.ledger.tables())  # fmt: skip
        self._names: dict[str, str] = {}  # merchant names and warehouses never change
        self._warehouses: dict[str, dict] = {}
        self.begin_batch(None)

    # -- batch bookkeeping ---------------------------------------------------------------------
    def begin_batch(self, cur: Any) -> None:
        self._states: dict[str, dict | None] = {}
        self._changed: set[str] = set()  # product states to write back
        self._dirty: set[str] = set()  # pages to assemble
        self._groups: set[str] = set()  # offer lists to assemble
        self._stock: dict[str, list[dict]] = {}

    def _state(self, cur: Any, pid: str) -> dict | None:
        if pid not in self._states:
            cur.execute(f"SELECT state FROM {self.t.products} WHERE id = %s", (pid,))  # noqa: S608
            row = cur.fetchone()
            self._states[pid] = json.loads(row[0]) if row else None
        return self._states[pid]

    def _touch(self, pid: str, changed: bool = False) -> None:
        self._dirty.add(pid)
        if changed:
            self._changed.add(pid)

    # -- events --------------------------------------------------------------------------------
    def apply(self, cur: Any, event: Any, position: int) -> None:
        topic = type(event).TOPIC
        oid = str(event.originator_id)
        if topic in STOCK_TOPICS:
            pid = self.ledger.apply(cur, topic, event)
            if pid is not None:
                self._touch(pid)
                self._stock.pop(pid, None)
        elif topic == T["merchant"]:
            cur.execute(f"INSERT INTO {self.t.merchants} (id, name) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT (id) DO NOTHING", (oid, event.name))  # fmt: skip
        elif topic == T["warehouse"]:
            low, high = WAREHOUSE_KINDS[event.kind][1]
            doc = {"warehouse_id": oid, "name": event.name, "kind": event.kind,
                   "customs_mode": WAREHOUSE_KINDS[event.kind][0], "country": event.country,
                   "delivery_days": {"min": low, "max": high}}  # fmt: skip
            cur.execute(f"INSERT INTO {self.t.warehouses} (id, doc) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT (id) DO NOTHING", (oid, dumps(doc)))  # fmt: skip
        elif topic == T["listed"]:
            self._states[oid] = {
                "id": oid, "merchant_id": str(event.merchant_id), "sku": event.sku,
                "title": event.title, "brand": event.brand, "category": event.category,
                "origin_country": event.origin_country, "hs_code": event.hs_code,
                "list_price_minor": event.list_price_minor, "currency": event.currency,
                "vat_rate": str(event.vat_rate),
                "consumption_tax_rate": str(event.consumption_tax_rate),
                "weight_grams": event.weight_grams, "sold": 0, "stars": [0, 0, 0, 0, 0],
                "group_key": group_key(event.brand, event.title, getattr(event, "gtin", None)),
            }  # fmt: skip
            self._touch(oid, changed=True)
        elif topic == T["revised"]:
            state = self._state(cur, oid)
            if state is None:
                return
            self._groups.add(state["group_key"])  # it may leave its old group
            for name, value in event.changes.items():
                if name in REVISABLE:
                    state[name] = str(value) if isinstance(value, Decimal) else value
            state["group_key"] = group_key(state["brand"], state["title"], state.get("gtin"))
            self._touch(oid, changed=True)
        elif topic == T["fx_opened"]:
            cur.execute(f"INSERT INTO {self.t.fx} (id, currency) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT (id) DO NOTHING", (oid, event.currency))  # fmt: skip
        elif topic == T["fx_set"]:
            cur.execute(
                f"UPDATE {self.t.fx} SET rate = %s WHERE id = %s",  # noqa: S608
                (str(event.rate), oid),
            )
            cur.execute(f"SELECT p.id FROM {self.t.products} p JOIN {self.t.fx} f"  # noqa: S608
                        " ON f.currency = p.currency WHERE f.id = %s", (oid,))  # fmt: skip
            self._dirty.update(row[0] for row in cur.fetchall())
        elif topic == T["placed"]:
            lines = [[ln["product_id"], ln["quantity"]] for ln in event.lines if "product_id" in ln]
            cur.execute(
                f"INSERT INTO {self.t.orders} (id, buyer_id, lines) VALUES (%s, %s, %s)"  # noqa: S608
                " ON CONFLICT (id) DO NOTHING",
                (oid, str(event.buyer_id), dumps(lines)),
            )
        elif topic == T["paid"] or (topic == T["refunded"] and event.full):
            self._sold(cur, oid, 1 if topic == T["paid"] else -1)
        elif topic == T["review"]:
            state = self._state(cur, str(event.product_id))
            if state is not None and 1 <= event.stars <= 5:
                state["stars"][event.stars - 1] += 1
                self._touch(state["id"], changed=True)
        elif topic.startswith("commerce.Note."):
            self._note(cur, topic, oid, event)

    def _sold(self, cur: Any, order_id: str, sign: int) -> None:
        cur.execute(
            f"SELECT buyer_id, lines FROM {self.t.orders} WHERE id = %s",  # noqa: S608
            (order_id,),
        )
        row = cur.fetchone()
        if row is None:
            return
        for pid, quantity in json.loads(row[1]):
            state = self._state(cur, pid)
            if state is None:
                continue
            state["sold"] += sign * quantity
            self._touch(pid, changed=True)
            if sign > 0:
                cur.execute(f"INSERT INTO {self.t.purchases} (buyer_id, product_id) VALUES"  # noqa: S608
                            " (%s, %s) ON CONFLICT DO NOTHING", (row[0], pid))  # fmt: skip

    def _note(self, cur: Any, topic: str, oid: str, event: Any) -> None:
        t = self.t
        cur.execute(f"SELECT product_id FROM {t.note_tags} WHERE note_id = %s", (oid,))  # noqa: S608
        self._dirty.update(row[0] for row in cur.fetchall())
        if topic == T["note_counted"]:
            cur.execute(
                f"UPDATE {t.notes} SET views = views + %s, likes = likes + %s, saves = saves + %s,"  # noqa: S608
                " shares = shares + %s, comments = comments + %s WHERE id = %s",
                (event.views, event.likes, event.saves, event.shares, event.comments, oid),
            )
            return
        cur.execute(f"DELETE FROM {t.note_tags} WHERE note_id = %s", (oid,))  # noqa: S608
        if topic == T["note_deleted"]:
            cur.execute(f"DELETE FROM {t.notes} WHERE id = %s", (oid,))  # noqa: S608
            return
        if topic == T["note_posted"]:
            cur.execute(
                f"INSERT INTO {t.notes} (id, author_id, title, posted_at, views, likes, saves,"  # noqa: S608
                " shares, comments) VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0)"
                " ON CONFLICT (id) DO NOTHING",
                (oid, str(event.author_id), event.title, event.at.timestamp()),
            )
        else:
            cur.execute(
                f"UPDATE {t.notes} SET title = %s WHERE id = %s",  # noqa: S608
                (event.title, oid),
            )
        for pid in dict.fromkeys(str(p) for p in event.product_ids):
            cur.execute(f"INSERT INTO {t.note_tags} (product_id, note_id) VALUES (%s, %s)"  # noqa: S608
                        " ON CONFLICT DO NOTHING", (pid, oid))  # fmt: skip
            self._dirty.add(pid)

    # -- assembling ----------------------------------------------------------------------------
    def end_batch(self, cur: Any) -> None:
        t = self.t
        for pid in sorted(self._changed):
            state = self._states[pid]
            cur.execute(
                f"INSERT INTO {t.products} (id, currency, group_key, state) VALUES (%s, %s, %s, %s)"  # noqa: S608
                " ON CONFLICT (id) DO UPDATE SET group_key = excluded.group_key,"
                " state = excluded.state",
                (pid, state["currency"], state["group_key"], dumps(state)),
            )
        for pid in sorted(self._dirty):
            state = self._state(cur, pid)
            if state is None:
                continue  # a note may tag a product this generation has not seen listed
            self._groups.add(state["group_key"])
            cur.execute(
                f"INSERT INTO {t.pages} (id, merchant_id, group_key, doc) VALUES (%s, %s, %s, %s)"  # noqa: S608
                " ON CONFLICT (id) DO UPDATE SET group_key = excluded.group_key,"
                " doc = excluded.doc",
                (pid, state["merchant_id"], state["group_key"], dumps(self._page(cur, state))),
            )
        for key in sorted(self._groups):
            cur.execute(
                f"SELECT id FROM {t.products} WHERE group_key = %s ORDER BY id",  # noqa: S608
                (key,),
            )
            offers = [self._offer(cur, self._state(cur, row[0])) for row in cur.fetchall()]
            cur.execute(
                f"INSERT INTO {t.offers} (group_key, offers) VALUES (%s, %s)"  # noqa: S608
                " ON CONFLICT (group_key) DO UPDATE SET offers = excluded.offers",
                (key, dumps(offers)),
            )
        self.begin_batch(cur)

    def _merchant_name(self, cur: Any, mid: str) -> str:
        if mid not in self._names:
            cur.execute(f"SELECT name FROM {self.t.merchants} WHERE id = %s", (mid,))  # noqa: S608
            row = cur.fetchone()
            self._names[mid] = row[0] if row else ""
        return self._names[mid]

    def _rate(self, cur: Any, currency: str) -> Decimal | None:
        cur.execute(f"SELECT rate FROM {self.t.fx} WHERE currency = %s", (currency,))  # noqa: S608
        row = cur.fetchone()
        return Decimal(row[0]) if row and row[0] is not None else None

    def _warehouses_of(self, cur: Any, pid: str) -> list[dict]:
        if pid not in self._stock:
            stock = []
            for entry in self.ledger.summary(cur, pid):
                wid = entry["warehouse_id"]
                if wid not in self._warehouses:
                    cur.execute(
                        f"SELECT doc FROM {self.t.warehouses} WHERE id = %s",  # noqa: S608
                        (wid,),
                    )
                    row = cur.fetchone()
                    self._warehouses[wid] = json.loads(row[0]) if row else {"kind": "bonded"}
                stock.append(self._warehouses[wid] | entry)
            self._stock[pid] = stock
        return self._stock[pid]

    def _landed(self, cur: Any, state: dict, modes: set[str]) -> dict:
        rate = self._rate(cur, state["currency"])
        return {m: landed_price(state, m, rate, self.config) for m in sorted(modes)}

    def _page(self, cur: Any, state: dict) -> dict:
        stock = self._warehouses_of(cur, state["id"])
        stars = state["stars"]
        count = sum(stars)
        share = star_rating_lower_bound({i + 1: c for i, c in enumerate(stars)})
        total = sum((i + 1) * c for i, c in enumerate(stars))
        core = {k: state[k] for k in CORE} | {
            "merchant_name": self._merchant_name(cur, state["merchant_id"])
        }
        return {
            "product": core,
            "landed": self._landed(cur, state, {w["kind"] for w in stock}),
            "warehouses": stock,
            "notes": self._notes(cur, state["id"]),
            "rating": {
                "count": count, "histogram": stars,
                "average": round(total / count, 2) if count else None,
                "wilson_lower_bound": round(share, 6),
                "stars_lower_bound": round(1 + 4 * share, 3) if count else None,
            },
            "units_sold": state["sold"],
        }  # fmt: skip

    def _notes(self, cur: Any, pid: str) -> list[dict]:
        t = self.t
        cur.execute(
            f"SELECT n.id, n.author_id, n.title, n.posted_at, n.views, n.likes, n.saves,"  # noqa: S608
            f" n.shares, n.comments, (SELECT COUNT(*) FROM {t.purchases} b"
            " WHERE b.buyer_id = n.author_id AND b.product_id = g.product_id)"
            f" FROM {t.note_tags} g JOIN {t.notes} n ON n.id = g.note_id WHERE g.product_id = %s",
            (pid,),
        )
        weights = self.config.notes.weights
        notes = [
            {"id": r[0], "author_id": r[1], "title": r[2], "posted_at": float(r[3]),
             "counts": {k: max(0, int(v)) for k, v in zip(
                 ("views", "likes", "saves", "shares", "comments"), r[4:9], strict=True)},
             "verified_buyer": bool(r[9])}
            for r in cur.fetchall()
        ]  # fmt: skip

        def engagement(note: dict) -> float:
            c = note["counts"]
            return weights.weighted({"like": c["likes"], "save": c["saves"],
                                     "share": c["shares"], "comment": c["comments"]})  # fmt: skip

        top = sorted(notes, key=lambda n: (-engagement(n), n["id"]))[:NOTES_BY_ENGAGEMENT]
        new = sorted(notes, key=lambda n: (-n["posted_at"], n["id"]))[:NOTES_NEWEST]
        keep = {n["id"]: n for n in [*top, *new]}
        return sorted(keep.values(), key=lambda n: n["id"])

    def _offer(self, cur: Any, state: dict | None) -> dict:
        assert state is not None
        modes: dict[str, dict] = {}
        for w in self._warehouses_of(cur, state["id"]):
            mode = modes.setdefault(w["kind"], {"on_hand": 0, "held": 0, "pending": []})
            mode["on_hand"] += w["on_hand"]
            mode["held"] += w["held"]
            mode["pending"] = sorted(mode["pending"] + w["pending"])
        for kind, price in self._landed(cur, state, set(modes)).items():
            modes[kind]["landed"] = price
        return {
            "product_id": state["id"], "merchant_id": state["merchant_id"],
            "merchant_name": self._merchant_name(cur, state["merchant_id"]),
            "title": state["title"], "currency": state["currency"],
            "list_price_minor": state["list_price_minor"], "modes": modes,
        }  # fmt: skip
