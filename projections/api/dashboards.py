"""The merchant dashboard and a live session's analytics (projections.dashboards).

`GET /merchants/me/dashboard?from=&to=`: the calling merchant's days (inclusive, ISO dates in
the business time zone; the last 30 days by default, at most 366): orders placed, paid, cancelled
and expired, conversion (paid of those placed that day), GMV, refunds and GMV net of refunds.
Days without orders are listed with zeros, so a chart needs no gap filling.

`GET /live/sessions/{session_id}/analytics`: for the host merchant (and admins; another merchant
gets 404): peak and current viewers, likes, per deal the claims, units and sell-through, and the
session's sales (its paid orders, wherever the claim was paid).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Router, get
from litestar.di import Provide
from litestar.params import FromPath, QueryParameter

from commerce.api.auth import allow
from commerce.api.common import path_uuid
from commerce.api.deps import Caller
from commerce.domain.errors import InvalidInput, NotFound
from commerce.services.access import ADMIN, MERCHANT
from projections.api.pages import Reads
from projections.attribution_policy import read_settings
from projections.dashboards import DAILY, SESSION_SALES, dashboard_tables, live_tables
from projections.registry import Generation

VIEW = "dashboards"
DEFAULT_DAYS, MAX_DAYS = 30, 366
ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DAY = {"format": "date", "description": "a day in the business time zone, like 2026-11-11"}


@cache
def business_tz() -> ZoneInfo:
    return ZoneInfo(read_settings().dashboard_timezone)


def _sql(reads: Any, query: str) -> Any:
    def sql(number: int) -> str:
        gen = Generation(number, reads.store.dialect, reads.config)
        return query.format(**dashboard_tables(gen), **live_tables(gen))

    return sql


def _date(value: str | None, field: str, default: date) -> date:
    if value is None:
        return default
    try:
        if not ISO_DAY.match(value):  # fromisoformat also takes 20261111 and 2026-W45-1
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("must be a date like 2026-11-11", field=field) from None


def day_figures(day: str, counts: dict[str, int]) -> dict:
    placed, converted = counts["placed"], counts["paid_of_placed"]
    return {
        "day": day,
        **counts,
        "conversion": round(converted / placed, 4) if placed else None,
        "net_gmv_fen": counts["gmv_fen"] - counts["refunded_fen"],
    }


def deal_figures(deal_id: str, body: dict) -> dict:
    quantity = body["quantity"]
    return {
        "deal_id": deal_id,
        **body,
        "sell_through": round(body["units_paid"] / quantity, 4) if quantity else None,
        "deal_gmv_fen": body["units_paid"] * body["price_fen"],
    }


class DashboardController(Controller):
    tags = ("analytics",)

    @get("/merchants/me/dashboard", guards=[allow(MERCHANT)])
    async def merchant_dashboard(
        self,
        principal: Caller,
        reads: Reads,
        since: Annotated[str | None, QueryParameter(name="from", schema_extra=DAY)] = None,
        until: Annotated[str | None, QueryParameter(name="to", schema_extra=DAY)] = None,
    ) -> dict[str, Any]:
        """GMV, orders, conversion and refunds per day."""
        today = reads.clock().astimezone(business_tz()).date()
        last = _date(until, "to", today)
        first = _date(since, "from", last - timedelta(days=DEFAULT_DAYS - 1))
        if first > last:
            raise InvalidInput("must not be after 'to'", field="from")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInput(f"at most {MAX_DAYS} days at a time", field="from")
        columns = ", ".join(DAILY)
        rows = await reads.read(
            VIEW,
            _sql(reads, f"SELECT day, {columns} FROM {{daily}} WHERE merchant_id = %s"  # noqa: S608
                 " AND day >= %s AND day <= %s"),
            (str(principal.id), first.isoformat(), last.isoformat()),
        )  # fmt: skip
        found = {row[0]: dict(zip(DAILY, map(int, row[1:]), strict=True)) for row in rows}
        zero = dict.fromkeys(DAILY, 0)
        days = [
            day_figures(day, found.get(day, zero))
            for n in range((last - first).days + 1)
            for day in [(first + timedelta(days=n)).isoformat()]
        ]
        totals = {c: sum(d[c] for d in days) for c in DAILY}
        return {
            "merchant_id": str(principal.id),
            "from": first.isoformat(),
            "to": last.isoformat(),
            "timezone": business_tz().key,
            "days": days,
            "totals": day_figures("total", totals),
        }

    @get("/live/sessions/{session_id:str}/analytics", guards=[allow(ADMIN, MERCHANT)])
    async def session_analytics(
        self, session_id: FromPath[str], principal: Caller, reads: Reads
    ) -> dict[str, Any]:
        """Peak viewers, claims, sell-through per deal and GMV of one live session."""
        sid = str(path_uuid(session_id, "session"))
        found = await reads.read(
            VIEW, _sql(reads, "SELECT merchant_id, body FROM {live_sessions} WHERE id = %s"), (sid,)
        )
        if not found or (principal.kind == MERCHANT and found[0][0] != str(principal.id)):
            raise NotFound("no such live session", field="session_id")
        session = msgspec.json.decode(found[0][1])
        deals = await reads.read(
            VIEW,
            _sql(reads, "SELECT id, body FROM {live_deals} WHERE session_id = %s ORDER BY seq"),
            (sid,),
        )
        sales = await reads.read(
            VIEW,
            _sql(reads, f"SELECT {', '.join(SESSION_SALES)} FROM {{session_sales}} WHERE id = %s"),  # noqa: S608
            (sid,),
        )
        samples = session.pop("instances").values()
        deal_rows = [deal_figures(row[0], msgspec.json.decode(row[1])) for row in deals]
        return {
            "session_id": sid,
            "host_merchant_id": found[0][0],
            **session,
            "viewers_now": sum(v for v, _ in samples) if session["status"] == "live" else 0,
            "likes": sum(likes for _, likes in samples),
            "claims": sum(d["claims"] for d in deal_rows),
            "units_paid": sum(d["units_paid"] for d in deal_rows),
            "deals": deal_rows,
            "sales": dict(zip(SESSION_SALES, map(int, sales[0]), strict=True))
            if sales
            else dict.fromkeys(SESSION_SALES, 0),
        }


def analytics_routes(reads: Any) -> Router:
    """Attribution, commissions, dashboard and live analytics, with `reads` (a
    projections.api.runtime.ReadModels) injected; redcart.app mounts this router."""
    from projections.api.attribution import AttributionController

    return Router(
        path="/",
        route_handlers=[AttributionController, DashboardController],
        dependencies={"reads": Provide(lambda: reads, use_cache=True, sync_to_thread=False)},
    )
