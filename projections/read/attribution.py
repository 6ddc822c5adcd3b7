"""Who gets credit for an order, and why: a pure attribution policy (research/commerce.md §2).

It runs once, when the order is placed, over the buyer's recorded touchpoints. The decision and
`policy_version` are meant to be stored in an event, so a replay never re-decides history under
a newer config. Every touchpoint gets exactly one verdict, because "why wasn't my order tracked?"
is the question creators ask most (§2.6).

Precedence: a promo code applied to the order beats every click; clicks beat views; among the
remaining candidates the configured model (last click by default) splits the credit. Facts the
policy cannot see for itself (a revoked link, a creator who does not work with the merchant) come
in as `OrderFacts.ineligible`, so they are explained like every other loss. Money is
integer fen and is split by largest remainder, so the shares add up to the base exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from commerce.domain.pricing import allocate_pro_rata

BASIS_POINTS = 10_000
# The keys of each verdict in `AttributionDecision.as_dict`, in order: a store may keep a
# verdict as the list of its values (projections.attribution_view) and zip them back.
VERDICT_FIELDS = (
    "touchpoint_id", "kind", "creator_id", "source_id", "at", "outcome", "window_seconds",
    "beaten_by", "share_fen", "rate_bp", "commission_fen", "detail",
)  # fmt: skip


class TouchpointKind(StrEnum):
    NOTE_VIEW = "note_view"
    NOTE_CLICK = "note_click"
    REFERRAL_CLICK = "referral_click"
    LIVE_JOIN = "live_join"
    LIVE_CLICK = "live_click"
    PROMO_CODE = "promo_code"


VIEW_KINDS = frozenset({TouchpointKind.NOTE_VIEW, TouchpointKind.LIVE_JOIN})
CLICK_KINDS = frozenset(
    {TouchpointKind.NOTE_CLICK, TouchpointKind.REFERRAL_CLICK, TouchpointKind.LIVE_CLICK}
)


class Model(StrEnum):
    LAST_CLICK = "last_click"
    FIRST_CLICK = "first_click"
    LINEAR = "linear"
    POSITION_BASED = "position_based"  # 40 % first, 40 % last, 20 % shared by the middle


class Outcome(StrEnum):
    WON_PROMO_CODE = "won_promo_code"
    WON_CLICK = "won_click"
    WON_VIEW = "won_view"  # view-through: only when no click qualified
    AFTER_ORDER = "after_order"
    OUTSIDE_WINDOW = "outside_window"
    SELF_REFERRAL = "self_referral"
    OVERRIDDEN_BY_PROMO_CODE = "overridden_by_promo_code"
    VIEW_VS_CLICK = "view_vs_click"
    SUPERSEDED_BY_LATER = "superseded_by_later"
    SUPERSEDED_BY_EARLIER = "superseded_by_earlier"
    INELIGIBLE = "ineligible"  # the caller said why: see Verdict.detail

    @property
    def won(self) -> bool:
        return self.value.startswith("won_")


@dataclass(frozen=True)
class Touchpoint:
    """One recorded interaction; `source_id` is the note, link, live session or code."""

    id: str
    kind: TouchpointKind
    creator_id: str
    at: datetime
    source_id: str = ""


@dataclass(frozen=True)
class OrderFacts:
    """`paid_fen` is what the buyer paid after all discounts; `tax_fen` is the part that is tax.

    Identity hashes (of phone, ID number, payout account…) catch a creator buying through their
    own link under a second account; `creator_user_ids` catches them buying under their own
    account when creator ids are not account ids. `ineligible` maps touchpoint ids to the reason
    they cannot earn credit for this order.
    """

    order_id: str
    buyer_id: str
    placed_at: datetime
    paid_fen: int
    tax_fen: int = 0
    buyer_identity_hashes: frozenset[str] = frozenset()
    creator_identity_hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    creator_user_ids: Mapping[str, str] = field(default_factory=dict)
    ineligible: Mapping[str, str] = field(default_factory=dict)

    @property
    def commissionable_fen(self) -> int:
        return self.paid_fen - self.tax_fen

    def is_self_referral(self, creator_id: str) -> bool:
        hashes = self.creator_identity_hashes.get(creator_id, frozenset())
        if creator_id == self.buyer_id or self.creator_user_ids.get(creator_id) == self.buyer_id:
            return True
        return bool(hashes & self.buyer_identity_hashes)


@dataclass(frozen=True)
class AttributionConfig:
    """Rates are basis points, looked up by touchpoint id, its source (link/code), then creator."""

    model: Model = Model.LAST_CLICK
    click_window: timedelta = timedelta(days=7)
    view_window: timedelta = timedelta(days=1)
    refund_window: timedelta = timedelta(days=15)
    default_rate_bp: int = 1_000
    rates_bp: Mapping[str, int] = field(default_factory=dict)
    policy_version: str = "attribution-v1"

    def rate_bp(self, touchpoint: Touchpoint) -> int:
        for key in (touchpoint.id, touchpoint.source_id, touchpoint.creator_id):
            if key and key in self.rates_bp:
                return self.rates_bp[key]
        return self.default_rate_bp

    def window(self, kind: TouchpointKind) -> timedelta | None:
        if kind is TouchpointKind.PROMO_CODE:
            return None  # the code was applied to this very order
        return self.view_window if kind in VIEW_KINDS else self.click_window


@dataclass(frozen=True)
class Verdict:
    """Why one touchpoint won or lost; `beaten_by` names the touchpoint that beat it."""

    touchpoint: Touchpoint
    outcome: Outcome
    window: timedelta | None
    beaten_by: str | None = None
    share_fen: int = 0
    rate_bp: int = 0
    commission_fen: int = 0
    detail: str | None = None


@dataclass(frozen=True)
class CreatorShare:
    creator_id: str
    share_fen: int
    commission_fen: int
    touchpoint_ids: tuple[str, ...]


@dataclass(frozen=True)
class AttributionDecision:
    order_id: str
    policy_version: str
    rule: str  # "promo_code", a Model value, or "unattributed"
    commissionable_fen: int
    shares: tuple[CreatorShare, ...]
    verdicts: tuple[Verdict, ...]  # one per touchpoint, in time order
    self_referral_creators: tuple[str, ...]
    lock_at: datetime

    @property
    def winners(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.outcome.won)

    @property
    def total_commission_fen(self) -> int:
        return sum(share.commission_fen for share in self.shares)

    def as_dict(self, verdict_rows: bool = False) -> dict[str, Any]:
        """A JSON-ready form for an `OrderAttributed` event payload; `verdict_rows`: each
        verdict as the list of its values in VERDICT_FIELDS order (what a store keeps)."""
        if verdict_rows:
            return self._head() | {"verdicts": [_row(v) for v in self.verdicts]}
        return self._head() | {"verdicts": [dict(zip(VERDICT_FIELDS, _row(v), strict=True))
                                            for v in self.verdicts]}  # fmt: skip

    def _head(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "policy_version": self.policy_version,
            "rule": self.rule,
            "commissionable_fen": self.commissionable_fen,
            "lock_at": self.lock_at.isoformat(),
            "self_referral_creators": list(self.self_referral_creators),
            "shares": [
                {
                    "creator_id": s.creator_id,
                    "share_fen": s.share_fen,
                    "commission_fen": s.commission_fen,
                    "touchpoint_ids": list(s.touchpoint_ids),
                }
                for s in self.shares
            ],
        }


def _row(v: Verdict) -> list:
    tp = v.touchpoint
    window = None if v.window is None else v.window.total_seconds()
    return [tp.id, tp.kind.value, tp.creator_id, tp.source_id, tp.at.isoformat(),
            v.outcome.value, window, v.beaten_by, v.share_fen, v.rate_bp, v.commission_fen,
            v.detail]  # fmt: skip


def attribute(
    touchpoints: Sequence[Touchpoint], order: OrderFacts, config: AttributionConfig
) -> AttributionDecision:
    if order.tax_fen < 0 or order.commissionable_fen < 0:
        raise ValueError("paid_fen and tax_fen must be non-negative, with tax <= paid")
    ordered = sorted(touchpoints, key=lambda t: (t.at, t.id))
    if len({t.id for t in ordered}) != len(ordered):
        raise ValueError("touchpoint ids must be unique")
    verdicts: dict[str, Verdict] = {}
    eligible: list[Touchpoint] = []
    self_referrers: list[str] = []
    for tp in ordered:
        window = config.window(tp.kind)
        if tp.at > order.placed_at:
            verdicts[tp.id] = Verdict(tp, Outcome.AFTER_ORDER, window)
        elif window is not None and order.placed_at - tp.at > window:
            verdicts[tp.id] = Verdict(tp, Outcome.OUTSIDE_WINDOW, window)
        elif order.is_self_referral(tp.creator_id):
            verdicts[tp.id] = Verdict(tp, Outcome.SELF_REFERRAL, window)
            if tp.creator_id not in self_referrers:
                self_referrers.append(tp.creator_id)
        elif tp.id in order.ineligible:
            reason = order.ineligible[tp.id]
            verdicts[tp.id] = Verdict(tp, Outcome.INELIGIBLE, window, detail=reason)
        else:
            eligible.append(tp)

    codes = [t for t in eligible if t.kind is TouchpointKind.PROMO_CODE]
    clicks = [t for t in eligible if t.kind in CLICK_KINDS]
    views = [t for t in eligible if t.kind in VIEW_KINDS]
    if codes:
        rule, winners, weights = "promo_code", [codes[-1]], [1]
        for tp in codes[:-1]:
            verdicts[tp.id] = _lost(tp, Outcome.SUPERSEDED_BY_LATER, codes[-1], config)
        for tp in clicks + views:
            verdicts[tp.id] = _lost(tp, Outcome.OVERRIDDEN_BY_PROMO_CODE, codes[-1], config)
    elif candidates := clicks or views:
        rule = config.model.value
        winners, weights = _apply_model(config.model, candidates, verdicts, config)
        for tp in views if clicks else []:
            verdicts[tp.id] = _lost(tp, Outcome.VIEW_VS_CLICK, winners[-1], config)
    else:
        rule, winners, weights = "unattributed", [], []

    base = order.commissionable_fen
    won = Outcome.WON_PROMO_CODE if codes else Outcome.WON_CLICK if clicks else Outcome.WON_VIEW
    parts = allocate_pro_rata(base, weights) if winners else ()
    for tp, share in zip(winners, parts, strict=True):
        rate = config.rate_bp(tp)
        if not 0 <= rate <= BASIS_POINTS:
            raise ValueError(f"rate for {tp.id} must be 0..{BASIS_POINTS} basis points")
        commission = share * rate // BASIS_POINTS
        verdicts[tp.id] = Verdict(tp, won, config.window(tp.kind), None, share, rate, commission)

    return AttributionDecision(
        order_id=order.order_id,
        policy_version=config.policy_version,
        rule=rule,
        commissionable_fen=base,
        shares=_shares_by_creator([verdicts[t.id] for t in winners]),
        verdicts=tuple(verdicts[t.id] for t in ordered),
        self_referral_creators=tuple(self_referrers),
        lock_at=order.placed_at + config.refund_window,
    )


def _lost(tp: Touchpoint, outcome: Outcome, by: Touchpoint, config: AttributionConfig) -> Verdict:
    return Verdict(tp, outcome, config.window(tp.kind), beaten_by=by.id)


def _apply_model(
    model: Model,
    candidates: list[Touchpoint],
    verdicts: dict[str, Verdict],
    config: AttributionConfig,
) -> tuple[list[Touchpoint], list[int]]:
    """Pick the credited candidates (time order) and their integer weights."""
    if model is Model.LAST_CLICK:
        for tp in candidates[:-1]:
            verdicts[tp.id] = _lost(tp, Outcome.SUPERSEDED_BY_LATER, candidates[-1], config)
        return [candidates[-1]], [1]
    if model is Model.FIRST_CLICK:
        for tp in candidates[1:]:
            verdicts[tp.id] = _lost(tp, Outcome.SUPERSEDED_BY_EARLIER, candidates[0], config)
        return [candidates[0]], [1]
    count = len(candidates)
    if model is Model.LINEAR or count <= 2:
        return candidates, [1] * count
    middle = count - 2  # 40/20/40 scaled by `middle` so every weight is an integer
    return candidates, [40 * middle, *([20] * middle), 40 * middle]


def _shares_by_creator(winners: list[Verdict]) -> tuple[CreatorShare, ...]:
    by_creator: dict[str, list[Verdict]] = {}
    for verdict in winners:
        by_creator.setdefault(verdict.touchpoint.creator_id, []).append(verdict)
    return tuple(
        CreatorShare(
            creator_id=creator,
            share_fen=sum(v.share_fen for v in won),
            commission_fen=sum(v.commission_fen for v in won),
            touchpoint_ids=tuple(v.touchpoint.id for v in won),
        )
        for creator, won in by_creator.items()
    )
