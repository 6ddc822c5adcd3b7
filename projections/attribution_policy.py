"""What the attribution view decides with: the policy in force, and which touchpoints may count.

`PolicySchedule`: attribution policies with the moment each took effect. An order is decided by
the one in force when it was placed (impact.com: "the contract live on the action date
governs"), so changing the model or a window never re-decides history, not even on a rebuild.
Settings come from REDCART_ATTRIBUTION_* (`read_settings`, which redcart.settings uses too).

`why_not`: the facts the pure policy (projections.read.attribution) cannot see for itself: is
there a registered creator behind the touchpoint, does the creator work with this merchant,
is the link or code theirs, this merchant's, for a product in the order, and was the link live
when clicked. Each refusal is a sentence, shown to creators as the reason they lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from commerce.domain import ids
from projections.batching import as_datetime, as_id
from projections.read.attribution import AttributionConfig, Model, Touchpoint, TouchpointKind

NOT_THIS_ORDER = "a promo code counts only on the order it was applied to"
DEFAULT_POLICY = {"model": "last_click", "click_window_hours": 168, "view_window_hours": 24}
KINDS = {kind.value: kind for kind in TouchpointKind}


def read_settings(env: Mapping[str, str] | None = None) -> SimpleNamespace:
    """The REDCART_ATTRIBUTION_*, _COMMISSION_* and _DASHBOARD_* settings, with defaults."""
    get = (os.environ if env is None else env).get
    return SimpleNamespace(
        attribution_model=get("REDCART_ATTRIBUTION_MODEL", "last_click"),
        attribution_click_window_hours=int(get("REDCART_ATTRIBUTION_CLICK_WINDOW_HOURS", "168")),
        attribution_view_window_hours=int(get("REDCART_ATTRIBUTION_VIEW_WINDOW_HOURS", "24")),
        attribution_policies=get("REDCART_ATTRIBUTION_POLICIES", ""),
        commission_refund_window_days=int(get("REDCART_COMMISSION_REFUND_WINDOW_DAYS", "15")),
        commission_payout_day=int(get("REDCART_COMMISSION_PAYOUT_DAY", "15")),
        dashboard_timezone=get("REDCART_DASHBOARD_TIMEZONE", "Asia/Shanghai"),
    )


@dataclass(frozen=True)
class PolicySchedule:
    policies: tuple[tuple[datetime, AttributionConfig], ...]

    def at(self, moment: datetime) -> AttributionConfig:
        current = self.policies[0][1]
        for since, config in self.policies:
            if since <= moment:
                current = config
        return current

    @property
    def retention(self) -> timedelta:
        """Touchpoints older than twice the longest window cannot matter, even as "too old"."""
        return 2 * max(max(c.click_window, c.view_window) for _, c in self.policies)

    @classmethod
    def from_settings(cls, settings: Any) -> PolicySchedule:
        """REDCART_ATTRIBUTION_POLICIES (a JSON list of {"from", "model", "click_window_hours",
        "view_window_hours", "refund_window_days"}) if set, else the one current policy."""
        if settings.attribution_policies:
            return cls.of(json.loads(settings.attribution_policies))
        current = {
            "model": settings.attribution_model,
            "click_window_hours": settings.attribution_click_window_hours,
            "view_window_hours": settings.attribution_view_window_hours,
            "refund_window_days": settings.commission_refund_window_days,
        }
        return cls.of([current])

    @classmethod
    def of(cls, entries: list[dict]) -> PolicySchedule:
        policies = []
        for entry in entries:
            since = datetime.fromisoformat(entry["from"]) if entry.get("from") else None
            if since is not None and since.tzinfo is None:
                raise ValueError("an attribution policy's 'from' needs a time zone")
            click, view = int(entry["click_window_hours"]), int(entry["view_window_hours"])
            refund = int(entry.get("refund_window_days", 15))
            if min(click, view) <= 0 or refund < 0:
                raise ValueError("attribution windows must be positive")
            model = Model(entry["model"])
            version = f"{model.value}/click {click}h/view {view}h/refund {refund}d"
            config = AttributionConfig(
                model=model,
                click_window=timedelta(hours=click),
                view_window=timedelta(hours=view),
                refund_window=timedelta(days=refund),
                default_rate_bp=0,  # every eligible touchpoint names its own rate
                policy_version=version + (f" from {since.isoformat()}" if since else ""),
            )
            policies.append((since or datetime.min.replace(tzinfo=UTC), config))
        if not policies:
            raise ValueError("at least one attribution policy is needed")
        return cls(tuple(sorted(policies, key=lambda p: p[0])))


@lru_cache(maxsize=65_536)
def link_id(code: str) -> str:
    return str(ids.referral_link_id(code))


@lru_cache(maxsize=65_536)
def code_id(code: str) -> str:
    return str(ids.promo_code_id(code.upper()))


def utc_iso(value: Any) -> str:
    """One spelling for every stored time, so stored times compare as strings."""
    return as_datetime(value).astimezone(UTC).isoformat()


def touchpoint(raw: dict) -> Touchpoint:
    """A journey's touchpoint dict (docs/events-social.md) as the policy's Touchpoint."""
    return Touchpoint(raw["id"], KINDS[raw["kind"]], raw["creator_id"] or "",
                      as_datetime(raw["at"]), raw["source_id"] or "")  # fmt: skip


def from_order(order_id: str, d: dict, placed_at: datetime) -> list[Touchpoint]:
    """What the order itself says: a promo code applied at checkout, or the live session (and
    its creator) a flash-deal claim was made in. Both happened at the moment of placing."""
    extra = d.get("attribution") or {}
    creator = as_id(extra.get("creator_id")) or ""
    if extra.get("promo_code"):
        code = str(extra["promo_code"]).upper()
        return [Touchpoint(f"code:{order_id}", TouchpointKind.PROMO_CODE, creator, placed_at, code)]
    if extra.get("source") == "live":
        session, tid = (
            str(extra.get("session_id") or ""),
            f"live:{extra.get('claim_id') or order_id}",
        )
        return [Touchpoint(tid, TouchpointKind.LIVE_CLICK, creator, placed_at, session)]
    return []


def why_not(
    tp: Touchpoint,
    about: str | None,
    creator: dict | None,
    offer: dict | None,
    merchant: str,
    products: set,
) -> tuple[str | None, int]:
    """(why this touchpoint cannot earn credit on this order, or None; its rate otherwise).

    `creator` and `offer` are the view's records of the touchpoint's creator and of the link or
    code it names; `about` is the product the touchpoint was about, if any."""
    if not tp.creator_id:
        return "no creator is behind this touchpoint", 0
    if creator is None:
        return "not a registered creator", 0
    if tp.kind in (TouchpointKind.REFERRAL_CLICK, TouchpointKind.PROMO_CODE):
        is_link = tp.kind is TouchpointKind.REFERRAL_CLICK
        what = "referral link" if is_link else "promo code"
        if offer is None or offer["creator_id"] != tp.creator_id:
            return f"no such {what} of this creator", 0
        if offer["merchant_id"] != merchant:
            return f"the {what} is for another merchant", 0
        if offer["product_id"] and offer["product_id"] not in products:
            return f"the {what} is for a product not in this order", 0
        at = utc_iso(tp.at)
        if is_link and offer["revoked_at"] and offer["revoked_at"] <= at:
            return "the referral link had been revoked before the click", 0
        if is_link and not offer["valid_from"] <= at < offer["valid_until"]:
            return "the referral link was not valid when clicked", 0
        return None, offer["rate_bp"]
    rate = creator["merchants"].get(merchant)
    if rate is None:
        return "the creator does not work with this merchant", 0
    if about and about not in products:
        return "the touchpoint was about a product not in this order", 0
    return None, rate
