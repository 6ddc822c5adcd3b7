"""Attribution and commission through the projection, case by case (a table), on both stores.

Each case writes a real Commerce log (creators, links, codes, touchpoints, an order and what
happened to it), runs the attribution projection over it, and checks the stored decision and the
commission's state as read at given moments. SQLite runs the plain runner; PostgreSQL runs the
batch runner with its msgspec decoder, so both paths are held to the same table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest

from projections.api.attribution import commission_view, explain
from projections.attribution_policy import PolicySchedule
from projections.attribution_view import AttributionView
from tests.projections_attribution.world import BUYER_HASH, DAY, HOUR, T0, World

SEC = timedelta(seconds=1)
COMMISSION_COLUMNS = (
    "order_id, creator_id, merchant_id, seq, state, lock_at, payable_at, amount_fen, body"
)


@dataclass
class Case:
    touches: list[tuple]  # (label, kind, creator, source, how long before the order)
    rule: str
    commission: dict[str, int]  # creator -> commission_fen decided
    outcomes: dict[str, str]  # touchpoint label -> outcome ("promo"/"live": the order's own)
    model: str = "last_click"
    attribution: str | None = None  # "promo" (CAROL10 at checkout) or "live" (alice's session)
    steps: list[tuple] = field(default_factory=list)  # ("pay"|"deliver"|"refund"|"cancel", ...)
    reads: list[tuple] = field(default_factory=list)  # (moment, {creator: (state, amount_fen)})


LINK = ("b", "referral_click", "bob", "BOB-LINK", DAY)  # bob's link: 15 % of 10,000 = 1,500
PAID_DELIVERED = [("pay",), ("deliver", T0 + 5 * DAY)]  # locks at T0 + 20 days

CASES = {
    "last click within the 7-day window wins": Case(
        [("a", "note_click", "alice", "note-1", 3 * DAY), LINK],
        "last_click",
        {"bob": 1_500},
        {"a": "superseded_by_later", "b": "won_click"},
    ),
    "a click 7 days and 1 second old is outside the window": Case(
        [("a", "note_click", "alice", "note-1", 7 * DAY + SEC)],
        "unattributed",
        {},
        {"a": "outside_window"},
    ),
    "a click exactly 7 days old still counts": Case(
        [("a", "note_click", "alice", "note-1", 7 * DAY)],
        "last_click",
        {"alice": 1_000},
        {"a": "won_click"},
    ),
    "first click, when configured": Case(
        [("a", "note_click", "alice", "note-1", 3 * DAY), LINK],
        "first_click",
        {"alice": 1_000},
        {"a": "won_click", "b": "superseded_by_earlier"},
        model="first_click",
    ),
    "linear splits the commissionable amount": Case(
        [("a", "note_click", "alice", "note-1", 3 * DAY), LINK],
        "linear",
        {"alice": 500, "bob": 750},
        {"a": "won_click", "b": "won_click"},
        model="linear",
    ),
    "position based gives 40/20/40": Case(
        [
            ("a", "note_click", "alice", "n1", 3 * DAY),
            ("c", "live_click", "carol", "s1", 2 * DAY),
            LINK,
        ],
        "position_based",
        {"alice": 400, "carol": 200, "bob": 600},
        {"a": "won_click", "c": "won_click", "b": "won_click"},
        model="position_based",
    ),
    "a promo code overrides a later click, at the code's rate": Case(
        [("b", "referral_click", "bob", "BOB-LINK", HOUR)],
        "promo_code",
        {"carol": 2_000},
        {"b": "overridden_by_promo_code", "promo": "won_promo_code"},
        attribution="promo",
    ),
    "a view counts only when there is no click": Case(
        [("v", "note_view", "alice", "note-1", 20 * HOUR)],
        "last_click",
        {"alice": 1_000},
        {"v": "won_view"},
    ),
    "a view older than the 24-hour view window": Case(
        [("v", "note_view", "alice", "note-1", 25 * HOUR)],
        "unattributed",
        {},
        {"v": "outside_window"},
    ),
    "self-referral: a creator sharing the buyer's identity hash": Case(
        [("s", "note_click", "sock", "note-9", DAY)], "unattributed", {}, {"s": "self_referral"}
    ),
    "self-referral: the buyer's own creator account": Case(
        [("s", "note_click", "self", "note-9", DAY)], "unattributed", {}, {"s": "self_referral"}
    ),
    "self-referral does not hide a real referrer": Case(
        [("a", "note_click", "alice", "note-1", 2 * DAY), ("s", "note_click", "self", "n", HOUR)],
        "last_click",
        {"alice": 1_000},
        {"a": "won_click", "s": "self_referral"},
    ),
    "a link revoked before the click earns nothing": Case(
        [("e", "referral_click", "eve", "EVE-OLD", DAY)], "unattributed", {}, {"e": "ineligible"}
    ),
    "a creator who does not work with the merchant earns nothing": Case(
        [("d", "note_click", "dave", "note-4", DAY)], "unattributed", {}, {"d": "ineligible"}
    ),
    "a link of another merchant earns nothing": Case(
        [("f", "referral_click", "frank", "FRANK-OTHER", DAY)],
        "unattributed",
        {},
        {"f": "ineligible"},
    ),
    "a flash-deal order credits the live session's creator": Case(
        [], "last_click", {"alice": 1_000}, {"live": "won_click"}, attribution="live"
    ),
    "paid but not delivered stays pending, however long": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=[("pay",)],
        reads=[(T0 + 90 * DAY, {"bob": ("pending", 1_500)})],
    ),
    "locked 15 days after delivery, payable on the next 15th": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=PAID_DELIVERED,
        reads=[
            (T0 + 20 * DAY - SEC, {"bob": ("pending", 1_500)}),
            (T0 + 20 * DAY, {"bob": ("locked", 1_500)}),  # 2026-11-21 12:00 UTC
            (datetime.fromisoformat("2026-12-15T00:00:00+00:00"), {"bob": ("payable", 1_500)}),
        ],
    ),
    "a partial refund before the lock claws back pro rata": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=[*PAID_DELIVERED, ("refund", 2_260, T0 + 10 * DAY)],  # 20 % of the order
        reads=[(T0 + 11 * DAY, {"bob": ("pending", 1_200)})],
    ),
    "two partial refunds add up without drift": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=[("pay",), ("refund", 3_390, T0 + DAY), ("refund", 3_390, T0 + 2 * DAY)],
        reads=[(T0 + 3 * DAY, {"bob": ("pending", 600)})],
    ),
    "a full refund before the lock reverses": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=[("pay",), ("refund", 11_300, T0 + 2 * DAY)],
        reads=[(T0 + 60 * DAY, {"bob": ("reversed", 0)})],
    ),
    "a refund after the lock claws nothing back": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=[*PAID_DELIVERED, ("refund", 5_650, T0 + 21 * DAY)],
        reads=[(T0 + 21 * DAY, {"bob": ("locked", 1_500)})],
    ),
    "an order never paid opens no commission": Case(
        [LINK],
        "last_click",
        {"bob": 1_500},
        {"b": "won_click"},
        steps=[("cancel", T0 + HOUR / 12)],
        reads=[(T0 + 60 * DAY, {})],
    ),
}


def cast(world: World, buyer: UUID) -> dict[str, str]:
    """Everyone a case may name. Rates: alice, carol 10 %; bob's link 15 %; carol's code 20 %."""
    people = {name: world.creator(name) for name in ("alice", "bob", "carol")}
    people["dave"] = world.creator("dave", rate_bp=None)
    people["sock"] = world.creator("sock", hashes=(BUYER_HASH,))
    people["self"] = world.creator("self", user_id=buyer)
    people["eve"], people["frank"] = world.creator("eve"), world.creator("frank")
    world.link(people["bob"], "BOB-LINK", 1_500)
    world.promo(people["carol"], "CAROL10", 2_000)
    world.revoke(world.link(people["eve"], "EVE-OLD", 1_500), T0 - 2 * DAY)
    world.link(people["frank"], "FRANK-OTHER", 1_500, merchant_id=uuid4())
    return people


def run_case(world: World, case: Case, fast: bool) -> tuple[dict, list[tuple], dict[str, str]]:
    buyer = uuid4()
    people = cast(world, buyer)
    labels = {}
    for label, kind, who, source, ago in case.touches:
        labels[world.touch(buyer, kind, people[who], source, T0 - ago)] = label
    extra = None
    if case.attribution == "promo":
        extra = {
            "promo_code": "CAROL10",
            "creator_id": people["carol"],
            "percent_off": 10,
            "discount_fen": 1_000,
        }
    elif case.attribution == "live":
        extra = {
            "source": "live",
            "session_id": str(uuid4()),
            "creator_id": people["alice"],
            "host_merchant_id": str(world.merchant),
            "deal_id": str(uuid4()),
            "claim_id": "claim-1",
        }
    order = world.order(buyer, attribution=extra)
    labels[f"code:{order.id}"], labels["live:claim-1"] = "promo", "live"
    for step in case.steps:
        getattr(world, step[0])(order, *step[1:])
    policy = {"model": case.model, "click_window_hours": 168, "view_window_hours": 24}
    projection = AttributionView(policies=PolicySchedule.of([policy]), tz="UTC")
    world.project(projection, fast=fast)
    t = projection.t
    merchant, body = world.store.query(
        f"SELECT merchant_id, body FROM {t['orders']} WHERE id = %s",
        (str(order.id),),
    )[0]
    rows = world.store.query(
        f"SELECT {COMMISSION_COLUMNS} FROM {t['commissions']} WHERE order_id = %s",
        (str(order.id),),
    )
    names = {cid: name for name, cid in people.items()}
    return explain(str(order.id), merchant, _json(body), []), rows, names | labels


def _json(text: str) -> dict:
    return json.loads(text)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_attribution_case(world: World, store_url: str | None, case: Case) -> None:
    explained, rows, names = run_case(world, case, fast=store_url is not None)

    assert explained["rule"] == case.rule
    assert _by_creator(explained, names) == case.commission
    outcomes = {names[v["touchpoint_id"]]: v["outcome"] for v in explained["touchpoints"]}
    assert outcomes == case.outcomes
    assert all(v["why"] for v in explained["touchpoints"])
    assert explained["amounts"]["commissionable_fen"] == 10_000  # paid 11,300 less 1,300 tax
    assert explained["policy"]["model"] == case.model
    for moment, expected in case.reads:
        seen = {names[r[1]]: commission_view(r, moment) for r in rows}
        assert {n: (c["state"], c["amount_fen"]) for n, c in seen.items()} == expected, moment


def _by_creator(explained: dict, names: dict) -> dict[str, int]:
    """Commission per creator, summing a creator's several winning touchpoints."""
    totals: dict[str, int] = {}
    for verdict in explained["winners"]:
        name = names[verdict["creator_id"]]
        totals[name] = totals.get(name, 0) + verdict["commission_fen"]
    return totals


def test_an_adjustment_is_recorded_for_a_refund_after_the_lock(world: World) -> None:
    _, rows, _ = run_case(world, CASES["a refund after the lock claws nothing back"], fast=True)
    (commission,) = [commission_view(r, T0 + 30 * DAY) for r in rows]
    (adjustment,) = commission["adjustments"]
    assert adjustment["refunded_fen"] == 5_000  # of the commissionable base
    assert adjustment["unrecovered_fen"] == 750  # what a clawback would have taken
    assert commission["lock_at"] == "2026-11-21T12:00:00+00:00"
    assert commission["payable_at"] == "2026-12-15T00:00:00+00:00"
