"""Why an order was (or was not) credited to a creator, and what each creator has earned.

`GET /orders/{order_id}/attribution`: the stored decision (projections.attribution_view) told
as an answer to "why wasn't my order tracked?" (research/commerce.md §2.6): every touchpoint with
its outcome and one sentence why, the policy version, model and windows it was decided under,
and the commissions it opened with their state now. The order's merchant and admins may read it;
buyers may not (it names creators and self-referral findings), and any other caller gets 404.

`GET /creators/{creator_id}/commissions`: the creator's commissions, newest first, with totals
per state. Admins see all; the creator (a buyer account) sees their own; a merchant sees only the
commissions on its own orders, of a creator who works or has worked with it.

Locked and payable are derived here from the stored times (projections.read.commission.state_at).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get
from litestar.params import FromPath, QueryParameter

from commerce.api.auth import allow
from commerce.api.common import (
    MAX_PAGE,
    Cursor,
    PageLimit,
    _decode_cursor,
    _encode_cursor,
    path_uuid,
)
from commerce.api.deps import Caller, Runtime
from commerce.api.problems import problem
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.orders import Order
from commerce.services.access import ADMIN, BUYER, MERCHANT
from projections.api import responses as out
from projections.api.pages import Reads
from projections.attribution_view import table_names
from projections.read.attribution import VERDICT_FIELDS
from projections.read.commission import NOT_YET, CommissionState, state_at
from projections.registry import Generation

VIEW = "attribution"
STATES = ("pending", "locked", "payable", "reversed")
COMMISSION_COLUMNS = (
    "order_id, creator_id, merchant_id, seq, state, lock_at, payable_at, amount_fen, body"
)
MODELS = {
    "last_click": "the last eligible click",
    "first_click": "the first eligible click",
    "linear": "equal shares over all eligible clicks",
    "position_based": "40 % to the first and last eligible clicks, 20 % shared by the middle",
}


def span(seconds: float | None) -> str:
    if seconds is None:
        return "no"
    days, rest = divmod(int(seconds), 86_400)
    if days and not rest:
        return f"{days}-day"
    return f"{int(seconds) // 3600}-hour" if seconds >= 3600 else f"{int(seconds)}-second"


def why(verdict: dict, decision: dict) -> str:
    """One sentence per outcome: what a creator needs to know about this touchpoint."""
    window, by = span(verdict["window_seconds"]), verdict.get("beaten_by")
    model = decision.get("model", "")
    placed = datetime.fromisoformat(decision["placed_at"])
    age = (placed - datetime.fromisoformat(verdict["at"])).total_seconds()
    return {
        "won_promo_code": f"won: promo code {verdict['source_id']} was applied to this order, "
        "and a code overrides every click and view",
        "won_click": f"won under {model}: {MODELS.get(model, model)} within the {window} window",
        "won_view": f"won: no eligible click, so this view within the {window} view window counts",
        "after_order": "lost: it happened after the order was placed",
        "outside_window": f"lost: it was {age / 3600:.1f} hours before the order, outside the "
        f"{window} window",
        "self_referral": "lost: the buyer is this creator (same account or identity), and "
        "self-referral earns nothing",
        "overridden_by_promo_code": f"lost: promo code touchpoint {by} was applied to the order "
        "and overrides clicks and views",
        "view_vs_click": f"lost: a view never beats an eligible click ({by} won)",
        "superseded_by_later": f"lost: under {model} the later touchpoint {by} took the credit",
        "superseded_by_earlier": f"lost: under {model} the earlier touchpoint {by} kept the credit",
        "ineligible": f"lost: {verdict.get('detail')}",
    }.get(verdict["outcome"], verdict["outcome"])


def commission_view(row: tuple | list, now: datetime) -> dict:
    order_id, creator_id, merchant_id, _, state, lock_at, payable_at, amount, body = row
    body = msgspec.json.decode(body) if isinstance(body, str | bytes) else body
    lock = NOT_YET if lock_at is None else datetime.fromtimestamp(lock_at, UTC)
    payable = NOT_YET if payable_at is None else datetime.fromtimestamp(payable_at, UTC)
    return {
        "order_id": order_id,
        "creator_id": creator_id,
        "merchant_id": merchant_id,
        "state": state_at(CommissionState(state), lock, payable, now).value,
        "amount_fen": amount,
        "original_fen": body["original_fen"],
        "base_fen": body["base_fen"],
        "refunded_base_fen": body["refunded_fen"],
        "rule": body["rule"],
        "paid_at": body["paid_at"],
        "lock_at": None if lock_at is None else lock.isoformat(),
        "payable_at": None if payable_at is None else payable.isoformat(),
        "adjustments": body["adjustments"],
    }


def explain(order_id: str, merchant_id: str, body: dict, commissions: list[dict]) -> dict:
    decision = body["decision"]
    verdicts = [
        v | {"why": why(v, decision)}
        for v in (
            dict(zip(VERDICT_FIELDS, v, strict=True)) if isinstance(v, list) else v
            for v in decision.get("verdicts", ())
        )
    ]
    winners = [v for v in verdicts if v["outcome"].startswith("won_")]
    refund_days = decision.get("refund_window_seconds", 0) / 86_400
    if winners:
        names = ", ".join(f"{v['creator_id']} ({v['share_fen']} fen)" for v in winners)
        summary = f"credited under {decision['rule']} to {names}"
    else:
        summary = decision.get("detail") or "no touchpoint earned credit; see each one's reason"
    return {
        "order_id": order_id,
        "merchant_id": merchant_id,
        "status": body["status"],
        "placed_at": decision.get("placed_at"),
        "rule": decision["rule"],
        "summary": summary,
        "policy": {
            "version": decision.get("policy_version"),
            "model": decision.get("model"),
            "click_window_seconds": decision.get("click_window_seconds"),
            "view_window_seconds": decision.get("view_window_seconds"),
            "refund_window_seconds": decision.get("refund_window_seconds"),
            "lock_rule": f"commissions lock {refund_days:g} days after delivery",
        },
        "amounts": {
            "total_fen": body["total_fen"],
            "tax_fen": body["tax_fen"],
            "commissionable_fen": decision.get("commissionable_fen", 0),
            "refunded_fen": body["refunded_fen"],
        },
        "winners": winners,
        "touchpoints": verdicts,
        "ignored": decision.get("ignored", []),
        "self_referral_creators": decision.get("self_referral_creators", []),
        "commissions": commissions,
    }


def _sql(reads: Any, query: str) -> Any:
    def sql(number: int) -> str:
        return query.format(**table_names(Generation(number, reads.store.dialect, reads.config)))

    return sql


def state_clause(state: str) -> tuple[str, int]:
    """SQL for a derived state, and how many times it needs the current time."""
    return {
        "pending": ("state = 'pending' AND (lock_at IS NULL OR lock_at > %s)", 1),
        "locked": ("state = 'pending' AND lock_at <= %s AND payable_at > %s", 2),
        "payable": ("state = 'pending' AND payable_at <= %s", 1),
        "reversed": ("state = 'reversed'", 0),
    }[state]


class AttributionController(Controller):
    tags = ("attribution",)

    @get("/orders/{order_id:str}/attribution", guards=[allow(ADMIN, MERCHANT)])
    async def order_attribution(
        self, order_id: FromPath[str], principal: Caller, reads: Reads, runtime: Runtime
    ) -> Response[out.Attribution]:
        """Which touchpoint won, when, under which rule and window, and why the others lost."""
        oid = str(path_uuid(order_id, "order"))
        rows = await reads.read(
            VIEW, _sql(reads, "SELECT merchant_id, body FROM {orders} WHERE id = %s"), (oid,)
        )
        if not rows:
            order = await runtime.read(path_uuid(order_id, "order"), Order)
            if order is None or (principal.kind == MERCHANT and order.merchant_id != principal.id):
                raise NotFound("no such order", field="order_id")
            return problem(404, "Not attributed yet", "the order's attribution is not recorded "
                           "yet; retry in a moment", "not_attributed_yet",
                           headers={"Retry-After": "1"})  # fmt: skip
        merchant_id, body = rows[0][0], msgspec.json.decode(rows[0][1])
        if principal.kind == MERCHANT and merchant_id != str(principal.id):
            raise NotFound("no such order", field="order_id")
        found = await reads.read(
            VIEW,
            _sql(reads, f"SELECT {COMMISSION_COLUMNS} FROM {{commissions}} WHERE order_id = %s"),  # noqa: S608
            (oid,),
        )
        now = reads.clock()
        commissions = [commission_view(row, now) for row in sorted(found, key=lambda r: r[1])]
        return Response(explain(oid, merchant_id, body, commissions))

    @get("/creators/{creator_id:str}/commissions", guards=[allow(ADMIN, MERCHANT, BUYER)])
    async def creator_commissions(
        self,
        creator_id: FromPath[str],
        principal: Caller,
        reads: Reads,
        wanted: Annotated[
            str | None, QueryParameter(name="state", schema_extra={"enum": list(STATES)})
        ] = None,
        cursor: Cursor = None,
        limit: PageLimit = 50,
    ) -> Response[out.Commissions]:
        """A creator's commissions, newest first, with the count and amount per state."""
        cid = str(path_uuid(creator_id, "creator"))
        if wanted is not None and wanted not in STATES:
            raise InvalidInput(f"must be one of {', '.join(STATES)}", field="state")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"must be from 1 to {MAX_PAGE}", field="limit")
        before = _decode_cursor(cursor)
        found = await reads.read(VIEW, _sql(reads, "SELECT body FROM {creators} WHERE id = %s"),
                                 (cid,))  # fmt: skip
        creator = msgspec.json.decode(found[0][0]) if found else None
        where, params = ["creator_id = %s"], [cid]
        if principal.kind == MERCHANT:
            where.append("merchant_id = %s")
            params.append(str(principal.id))
        visible = creator is not None and (
            principal.kind == ADMIN
            or (principal.kind == BUYER and creator["user_id"] == str(principal.id))
            or principal.kind == MERCHANT
        )
        now = reads.clock()
        epoch = now.timestamp()
        totals_sql = (
            "SELECT CASE WHEN state = 'reversed' THEN 'reversed' WHEN lock_at IS NULL OR lock_at"
            " > %s THEN 'pending' WHEN payable_at > %s THEN 'locked' ELSE 'payable' END AS s,"
            " COUNT(*), SUM(amount_fen) FROM {commissions} WHERE %s GROUP BY 1"
        ).replace("WHERE %s", "WHERE " + " AND ".join(where))  # our own column clauses
        totals_params = [epoch, epoch, *params]
        if wanted is not None:
            clause, times = state_clause(wanted)
            where.append(clause)
            params += [epoch] * times
        if before is not None:
            where.append("seq < %s")
            params.append(before)
        clauses = " AND ".join(where)  # our own column clauses; values go as parameters
        listing = f"SELECT {COMMISSION_COLUMNS} FROM {{commissions}} WHERE {clauses}"  # noqa: S608
        listing += " ORDER BY seq DESC LIMIT %s"
        totals, rows = await reads.read_together(
            VIEW,
            [
                (_sql(reads, totals_sql), totals_params),
                (_sql(reads, listing), [*params, limit + 1]),
            ],
        )
        if principal.kind == MERCHANT and visible:
            linked = str(principal.id) in creator["merchants"]  # type: ignore[index]
            visible = linked or bool(totals)
        if not visible:
            raise NotFound("no such creator", field="creator_id")
        items = [commission_view(row, now) for row in rows[:limit]]
        sums = {row[0]: (int(row[1]), int(row[2] or 0)) for row in totals}
        return Response(
            {
                "creator_id": cid,
                "display_name": creator["name"],  # type: ignore[index]
                "totals": {
                    s: {"count": sums.get(s, (0, 0))[0], "amount_fen": sums.get(s, (0, 0))[1]}
                    for s in STATES
                },
                "items": items,
                "next_cursor": _encode_cursor(rows[limit - 1][3]) if len(rows) > limit else None,
            }
        )
