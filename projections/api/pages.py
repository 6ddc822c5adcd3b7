"""`GET /products/{product_id}/page`: one indexed read, then what depends on the clock.

The stored page (projections.product_page) holds holds-with-deadlines, note counters and
session times; here they become what a buyer sees now: units available per warehouse and its
delivery window, the cross-border badge, offers ordered by what they would cost delivered,
notes ranked by engagement damped by age, and the sessions featuring the product.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, TypeAlias

import msgspec
from litestar import Controller, MediaType, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter

from commerce.api.common import path_uuid
from commerce.config import CHINA
from commerce.domain.errors import NotFound
from projections.api import responses as out
from projections.api.page_fastpath import PageFastPath, cache_headers
from projections.api.runtime import ReadModels
from projections.product_page import PageTables
from projections.product_page_stock import available
from projections.read.ranking import NoteRankingConfig, note_rank_score
from projections.registry import Generation, ReadConfig

Reads: TypeAlias = NamedDependency[ReadModels]
NOTES_SHOWN = 10
REUSE_AT_MOST = 30.0  # seconds an unchanged page may be reused (PostgreSQL); `as_of` says when
STALE_SCHEDULE = timedelta(hours=2)  # a scheduled session this late to start is not shown
BADGES = {"bonded": ("1210", "保税仓发货"), "direct_mail": ("9610", "海外直邮")}
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=16)
def page_sql(dialect: str, number: int) -> str:
    """The page row and, by primary key, its offers, pinning sessions and merchant sessions;
    on PostgreSQL also the four rows' versions (see `versions_sql`)."""
    t = PageTables(Generation(number, dialect, ReadConfig()))
    versions = f", {version_columns(t)}" if dialect == "postgres" else ""
    return (
        f"SELECT p.doc, (SELECT o.offers FROM {t.offers} o WHERE o.group_key = p.group_key),"  # noqa: S608
        f" (SELECT l.sessions FROM {t.live} l WHERE l.product_id = p.id),"
        f" (SELECT m.sessions FROM {t.merchant_live} m WHERE m.merchant_id = p.merchant_id)"
        f"{versions} FROM {t.pages} p WHERE p.id = %s"
    )


@lru_cache(maxsize=16)
def versions_sql(number: int) -> str:
    """The versions (xmin) of the four rows a page is read from: PostgreSQL writes a new row
    version with a new xmin whenever the projection changes one, so equal versions mean the
    rows a page was rendered from are still the rows there are."""
    t = PageTables(Generation(number, "postgres", ReadConfig()))
    return f"SELECT {version_columns(t)} FROM {t.pages} p WHERE p.id = %s"  # noqa: S608


def version_columns(t: PageTables) -> str:
    return (
        f"p.xmin::text, (SELECT o.xmin::text FROM {t.offers} o WHERE o.group_key = p.group_key),"  # noqa: S608
        f" (SELECT l.xmin::text FROM {t.live} l WHERE l.product_id = p.id),"
        f" (SELECT m.xmin::text FROM {t.merchant_live} m WHERE m.merchant_id = p.merchant_id)"
    )


def reusable_until(row: tuple, now: datetime) -> float:
    """Epoch seconds until which a page rendered now stays right if its rows do not change:
    the next hold deadline (a unit comes back), and at most REUSE_AT_MOST (notes' scores decay
    with age, scheduled sessions drop off the list)."""
    doc, offers = _decode(row[0]), _decode(row[1]) if row[1] else []
    at = now.timestamp()
    pending = [w["pending"] for w in doc["warehouses"]]
    pending += [m["pending"] for o in offers for m in o["modes"].values()]
    deadlines = [until for holds in pending for until, _ in holds if until > at]
    return min([at + REUSE_AT_MOST, *deadlines])


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, CHINA).isoformat()


def _warehouse(w: dict, landed: dict, now: datetime) -> dict:
    low, high = w["delivery_days"]["min"], w["delivery_days"]["max"]
    today = now.astimezone(CHINA).date()
    return {
        "warehouse_id": w["warehouse_id"],
        "name": w["name"],
        "kind": w["kind"],
        "customs_mode": w["customs_mode"],
        "country": w["country"],
        "available": max(0, available(w["on_hand"], w["held"], w["pending"], now.timestamp())),
        "delivery": {
            "min_days": low,
            "max_days": high,
            "earliest": (today + timedelta(days=low)).isoformat(),
            "latest": (today + timedelta(days=high)).isoformat(),
        },
        "landed_price": landed.get(w["kind"]),
    }


def _offer(offer: dict, at: float) -> dict:
    free = {
        kind: max(0, available(m["on_hand"], m["held"], m["pending"], at))
        for kind, m in offer["modes"].items()
    }
    ships = next((k for k in ("bonded", "direct_mail") if free.get(k)), None)
    priced = ships or next((k for k in ("bonded", "direct_mail") if k in free), None)
    landed = offer["modes"][priced].get("landed") if priced else None
    return {
        "product_id": offer["product_id"],
        "merchant_id": offer["merchant_id"],
        "merchant_name": offer["merchant_name"],
        "title": offer["title"],
        "list_price": {"amount_minor": offer["list_price_minor"], "currency": offer["currency"]},
        "in_stock": ships is not None,
        "ships_from": priced,
        "available": sum(free.values()),
        "landed_price": landed,
    }


def _notes(notes: list[dict], now: datetime, config: NoteRankingConfig) -> list[dict]:
    ranked = []
    for n in notes:
        c = n["counts"]
        counts = {"like": c["likes"], "save": c["saves"], "share": c["shares"],
                  "comment": c["comments"]}  # fmt: skip
        age = now - datetime.fromtimestamp(n["posted_at"], now.tzinfo)
        score = note_rank_score(counts, age, config, verified_buyer=n["verified_buyer"])
        ranked.append((-score, n["id"], n, score))
    ranked.sort(key=lambda item: item[:2])
    return [
        {"id": n["id"], "author_id": n["author_id"], "title": n["title"],
         "posted_at": _iso(n["posted_at"]), "counts": n["counts"],
         "verified_buyer": n["verified_buyer"], "score": round(score, 6)}
        for _, _, n, score in ranked[:NOTES_SHOWN]
    ]  # fmt: skip


def _session(s: dict) -> dict:
    return {
        "id": s["id"],
        "title": s["title"],
        "state": s["state"],
        "host_merchant_id": s["host_merchant_id"],
        "starts_at": _iso(s["starts_at"]),
        "started_at": _iso(s["started_at"]),
        "pinned": s["pinned"],
    }


def render(row: tuple, now: datetime, config: NoteRankingConfig) -> dict:
    doc = _decode(row[0])
    offers, pinned, hosted = (_decode(x) if x else [] for x in row[1:4])
    at = now.timestamp()
    warehouses = [_warehouse(w, doc["landed"], now) for w in doc["warehouses"]]
    kinds = [w["kind"] for w in warehouses if w["available"]] or [w["kind"] for w in warehouses]
    badge = "bonded" if "bonded" in kinds else ("direct_mail" if kinds else None)
    featuring = {s["id"] for s in pinned}
    upcoming = [
        s for s in hosted
        if s["id"] not in featuring
        and (s["state"] == "live" or s["starts_at"] > at - STALE_SCHEDULE.total_seconds())
    ]  # fmt: skip
    offers = sorted(
        (_offer(o, at) for o in offers),
        key=lambda o: (not o["in_stock"], (o["landed_price"] or {}).get("total_fen", 1 << 62),
                       o["product_id"]),
    )  # fmt: skip
    return {
        "product": doc["product"],
        "cross_border": None
        if badge is None
        else {"mode": badge, "customs_mode": BADGES[badge][0], "label": BADGES[badge][1]},
        "landed_price": doc["landed"].get(badge) if badge else None,
        "available": sum(w["available"] for w in warehouses),
        "warehouses": warehouses,
        "offers": offers,
        "notes": _notes(doc["notes"], now, config),
        "rating": doc["rating"],
        "live_sessions": {
            "featuring_now": [_session(s) for s in pinned],
            "from_this_merchant": [_session(s) for s in upcoming],
        },
        "units_sold": doc["units_sold"],
        "as_of": now.isoformat(),
    }


class ProductPageController(Controller):
    path = "/products/{product_id:str}/page"
    tags = ("read models",)

    @get("/", media_type=MediaType.JSON, middleware=[PageFastPath])
    async def product_page(
        self,
        product_id: FromPath[str],
        reads: Reads,
        cache_control: Annotated[str | None, HeaderParameter(name="cache-control")] = None,
    ) -> Response[out.ProductPage]:
        """The product page: product, cross-border badge, offers by every merchant with landed
        CNY price including tax, stock per warehouse with delivery estimate, notes that tag
        it, rating (Wilson lower bound), live sessions featuring it, units sold. Public.

        A rendered page may be reused for up to a second (REDCART_PAGE_CACHE_SECONDS). On
        PostgreSQL, after that second it is reused again (for up to 30 s) if the rows it was
        rendered from are unchanged and no hold on it has lapsed meanwhile: one version check
        instead of a read and a render. Send `Cache-Control: no-cache` for one read now."""
        pid = str(path_uuid(product_id, "product"))
        number = await reads.generation("product_page")
        key = (number, pid)
        fresh = bool(cache_control and "no-cache" in cache_control)
        body = None if fresh else reads.rendered(key)
        if body is None and not fresh and (kept := reads.revalidatable(key)) is not None:
            with contextlib.suppress(Exception):  # e.g. a rebuild dropped that generation
                rows = await reads.fetch(versions_sql(number), (pid,))
                if rows and tuple(rows[0]) == kept[1]:
                    body = reads.renew(key)
        if body is None:
            dialect = reads.store.dialect
            rows = await reads.read("product_page", lambda n: page_sql(dialect, n), (pid,))
            if not rows:
                raise NotFound("no such product", field="product_id")
            now = reads.clock()
            body = _encode(render(rows[0], now, reads.config.notes))
            versions = tuple(rows[0][4:]) if dialect == "postgres" else None
            until = reusable_until(rows[0], now) - now.timestamp()
            reads.remember_rendered(key, body, versions, until)
        return Response(body, media_type=MediaType.JSON, headers=cache_headers(reads))
