"""Merchant dashboard (Commerce log) and live-session analytics (Livestream log).

`MerchantDashboard` keeps counters per merchant and day: orders placed, paid, cancelled and
expired, GMV (what buyers paid, tax and freight included, on the day of payment) and refunds (on
the day refunded). Conversion is paid/placed of the orders placed that day (`paid_of_placed`,
counted back on the placing day when payment comes), so a day's rate never exceeds 100 % and does
not move with the next day's payments. Days are calendar days in the business time zone
(settings.dashboard_timezone, Asia/Shanghai by default): merchants reason in their buyers' days.
It also sums paid orders per live session (their attribution says `source: live`): the GMV
of a session is what its orders brought in, wherever the claim was paid.

`LiveAnalytics` follows sessions and flash deals: peak viewers, likes, and per deal the claims,
units claimed, paid, released and expired, and sell-through (units paid / units offered).
`AudienceCounted` samples come from each API process (`instance`) for its own sockets: the
audience is the sum of each instance's latest sample, and the peak is the largest such sum,
counting the sampling instance at its own peak since its previous sample.

Counters are added in one upsert per row per batch (projections.batching.Counters), so a busy
day or deal costs one statement per batch however many events it had.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import livestream.domain.deals
import livestream.domain.sessions  # noqa: F401 (these register the topics it reads)
from projections.attribution_policy import read_settings
from projections.batching import Batch, Batched, Fact, RowCache, as_datetime, as_id

DAILY = ("placed", "paid_of_placed", "paid_orders", "gmv_fen", "cancelled", "expired")
DAILY += ("refunds", "refunded_fen")
SESSION_SALES = ("orders", "paid_orders", "gmv_fen", "refunded_fen")


def _name(gen: Any, base: str) -> str:
    return gen.name(base) if gen else base


def dashboard_tables(gen: Any = None) -> dict[str, str]:
    return {k: _name(gen, f"dash_{k}") for k in ("orders", "daily", "session_sales")}


def live_tables(gen: Any = None) -> dict[str, str]:
    return {f"live_{k}": _name(gen, f"live_stats_{k}") for k in ("sessions", "deals", "claims")}


class MerchantDashboard(Batched):
    follows = "Commerce"
    topics = tuple(
        f"commerce.Order.{n}" for n in ("Placed", "Paid", "Cancelled", "Expired", "Refunded")
    )

    def __init__(self, gen: Any = None, tz: str = "Asia/Shanghai") -> None:
        self.name = _name(gen, "merchant_dashboard")
        self.tz = ZoneInfo(tz)
        self.row_cache = RowCache()  # rows kept between this runner's batches
        t = self.t = dashboard_tables(gen)
        self.tables = tuple(t.values())
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {t['orders']} (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t['daily']} (id TEXT PRIMARY KEY, merchant_id TEXT NOT"
            " NULL, day TEXT NOT NULL, " + ", ".join(f"{c} BIGINT NOT NULL" for c in DAILY) + ")",
            f"CREATE INDEX IF NOT EXISTS {t['daily']}_merchant ON {t['daily']} (merchant_id, day)",
            f"CREATE TABLE IF NOT EXISTS {t['session_sales']} (id TEXT PRIMARY KEY, merchant_id"
            " TEXT NOT NULL, " + ", ".join(f"{c} BIGINT NOT NULL" for c in SESSION_SALES) + ")",
        )

    @classmethod
    def for_generation(cls, gen: Any) -> MerchantDashboard:
        return cls(gen, read_settings().dashboard_timezone)

    def day(self, at: datetime) -> str:
        return at.astimezone(self.tz).date().isoformat()

    def apply_batch(self, cur: Any, facts: list[Fact]) -> None:
        t = self.t
        b = Batch(
            cur,
            {"orders": (t["orders"], ("body",))},
            {
                "daily": (t["daily"], ("merchant_id", "day"), DAILY),
                "sessions": (t["session_sales"], ("merchant_id",), SESSION_SALES),
            },
            cache=self.row_cache,
        )
        b.orders.load(f.oid for f in facts if not f.topic.endswith(".Placed"))
        for f in facts:
            what, d = f.topic.rsplit(".", 1)[-1], f.data
            if what == "Placed":
                extra = d.get("attribution") or {}
                order = {
                    "merchant_id": as_id(d["merchant_id"]),
                    "day": self.day(as_datetime(d["placed_at"])),
                    "total_fen": int(d["quote"]["total_fen"]),
                    "session_id": extra.get("session_id")
                    if extra.get("source") == "live"
                    else None,
                }
                b.orders.put(f.oid, {"body": order})
                self._count(b, order, order["day"], placed=1)
                if order["session_id"]:
                    b.sessions.add(order["session_id"], order, orders=1)
                continue
            row = b.orders.get(f.oid)
            if row is None:
                continue
            order, day = row["body"], self.day(as_datetime(d["at"]))
            if what == "Paid":
                self._count(b, order, order["day"], paid_of_placed=1)
                self._count(b, order, day, paid_orders=1, gmv_fen=int(d["amount_fen"]))
                if order["session_id"]:
                    b.sessions.add(order["session_id"], order, paid_orders=1)
                    b.sessions.add(order["session_id"], order, gmv_fen=int(d["amount_fen"]))
            elif what == "Refunded":
                fen = int(d["amount_fen"])
                self._count(b, order, day, refunds=1, refunded_fen=fen)
                if order["session_id"]:
                    b.sessions.add(order["session_id"], order, refunded_fen=fen)
            else:
                self._count(b, order, day, **{what.lower(): 1})
        b.flush()

    @staticmethod
    def _count(b: Batch, order: dict, day: str, **deltas: int) -> None:
        merchant = order["merchant_id"]
        b.daily.add(f"{merchant}|{day}", {"merchant_id": merchant, "day": day}, **deltas)


class LiveAnalytics(Batched):
    follows = "Livestream"
    topics = (
        *(f"livestream.LiveSession.{n}" for n in ("Scheduled", "Started", "Ended", "Cancelled")),
        "livestream.LiveSession.AudienceCounted",
        *(
            f"livestream.FlashDeal.{n}"
            for n in ("Opened", "Claimed", "SoldOut", "ClaimPaid", "ClaimReleased")
        ),
        "livestream.FlashDeal.ClaimExpired",
        "livestream.FlashDeal.Closed",
    )

    def __init__(self, gen: Any = None) -> None:
        self.name = _name(gen, "live_analytics")
        self.row_cache = RowCache()  # rows kept between this runner's batches
        t = self.t = live_tables(gen)
        self.tables = tuple(t.values())
        sessions, deals, claims = t["live_sessions"], t["live_deals"], t["live_claims"]
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {sessions} (id TEXT PRIMARY KEY, merchant_id TEXT NOT"
            " NULL, body TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {deals} (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,"
            " seq BIGINT NOT NULL, body TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {deals}_session ON {deals} (session_id, seq)",
            f"CREATE TABLE IF NOT EXISTS {claims} (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
        )

    @classmethod
    def for_generation(cls, gen: Any) -> LiveAnalytics:
        return cls(gen)

    def apply_batch(self, cur: Any, facts: list[Fact]) -> None:
        t = self.t
        b = Batch(
            cur,
            {
                "sessions": (t["live_sessions"], ("merchant_id", "body")),
                "deals": (t["live_deals"], ("session_id", "seq", "body")),
                "claims": (t["live_claims"], ("body",)),
            },
            cache=self.row_cache,
        )
        deals = [f for f in facts if ".FlashDeal." in f.topic]
        b.sessions.load(f.oid for f in facts if ".LiveSession." in f.topic)
        b.deals.load(f.oid for f in deals)
        b.claims.load(as_id(f.data["claim_id"]) for f in deals if "claim_id" in f.data)
        for f in facts:
            if ".LiveSession." in f.topic:
                self._session(b, f, f.topic.rsplit(".", 1)[-1])
            else:
                self._deal(b, f, f.topic.rsplit(".", 1)[-1])
        b.flush()

    @staticmethod
    def _session(b: Batch, f: Fact, what: str) -> None:
        d = f.data
        if what == "Scheduled":
            body = {
                "title": d["title"],
                "creator_id": as_id(d.get("creator_id")),
                "status": "scheduled",
                "starts_at": as_datetime(d["starts_at"]).isoformat(),
                "started_at": None,
                "finished_at": None,
                "peak_viewers": 0,
                "instances": {},  # instance -> [viewers, likes] of its latest sample
            }
            b.sessions.put(f.oid, {"merchant_id": as_id(d["host_merchant_id"]), "body": body})
            return
        row = b.sessions.get(f.oid)
        if row is None:
            return
        body = row["body"]
        if what == "AudienceCounted":
            instances = body["instances"]
            others = sum(v for key, (v, _) in instances.items() if key != d.get("instance", ""))
            instances[d.get("instance", "")] = [int(d["viewers"]), int(d["likes"])]
            peak = others + max(int(d["peak_viewers"]), int(d["viewers"]))
            body["peak_viewers"] = max(body["peak_viewers"], peak)
        elif what == "Started":
            body |= {"status": "live", "started_at": as_datetime(d["at"]).isoformat()}
        else:
            body |= {"status": what.lower(), "finished_at": as_datetime(d["at"]).isoformat()}
        b.sessions.put(f.oid, row)

    @staticmethod
    def _deal(b: Batch, f: Fact, what: str) -> None:
        d = f.data
        if what == "Opened":
            body = {
                "sku": d["sku"],
                "price_fen": int(d["price_fen"]),
                "quantity": int(d["quantity"]),
                "opened_at": as_datetime(d["announced_at"]).isoformat(),
                "closed_at": None,
                "sold_out_at": None,
                "claims": 0,
                "units_claimed": 0,
                "units_paid": 0,
                "units_released": 0,
                "units_expired": 0,
            }
            row = {"session_id": as_id(d["session_id"]), "seq": f.position, "body": body}
            b.deals.put(f.oid, row)
            return
        row = b.deals.get(f.oid)
        if row is None:
            return
        body = row["body"]
        if what == "Claimed":
            quantity = int(d["quantity"])
            b.claims.put(as_id(d["claim_id"]), {"body": [f.oid, quantity]})
            body["claims"] += 1
            body["units_claimed"] += quantity
        elif what in ("ClaimPaid", "ClaimReleased", "ClaimExpired"):
            claim = b.claims.get(as_id(d["claim_id"]))
            if claim is None:
                return
            key = {"ClaimPaid": "units_paid", "ClaimReleased": "units_released"}
            body[key.get(what, "units_expired")] += claim["body"][1]
        elif what == "SoldOut":
            body["sold_out_at"] = body["sold_out_at"] or as_datetime(d["at"]).isoformat()
        else:
            body["closed_at"] = as_datetime(d["at"]).isoformat()
        b.deals.put(f.oid, row)
