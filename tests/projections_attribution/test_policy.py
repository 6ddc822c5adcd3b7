"""Effective-dated policies, settings, and the touchpoint checks the view makes before the
policy weighs anything."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import uuid4

import pytest

from projections.attribution_policy import PolicySchedule, read_settings, why_not
from projections.attribution_view import AttributionView
from projections.read.attribution import Touchpoint, TouchpointKind
from projections.read.commission import payable_from
from redcart.settings import Settings
from tests.projections_attribution.world import DAY, T0, World

SWITCH = T0 + DAY  # first click from here on


def test_each_order_is_decided_by_the_policy_in_force_when_it_was_placed(world: World) -> None:
    alice, bob = world.creator("alice"), world.creator("bob")
    orders = []
    for at in (T0, SWITCH + DAY):
        buyer = uuid4()
        world.touch(buyer, "note_click", alice, "n1", at - 3 * DAY)
        world.touch(buyer, "note_click", bob, "n2", at - DAY)
        orders.append(world.order(buyer, at=at))
    schedule = PolicySchedule.of(
        [
            {"model": "last_click", "click_window_hours": 168, "view_window_hours": 24},
            {
                "from": SWITCH.isoformat(),
                "model": "first_click",
                "click_window_hours": 168,
                "view_window_hours": 24,
            },
        ]
    )
    view = AttributionView(policies=schedule)
    world.project(view)
    decided = {}
    for order in orders:
        (body,) = world.store.query(
            f"SELECT body FROM {view.t['orders']} WHERE id = %s", (str(order.id),)
        )[0]
        decision = json.loads(body)["decision"]
        decided[decision["model"]] = {s["creator_id"] for s in decision["shares"]}
        assert decision["policy_version"].startswith(decision["model"])
    assert decided == {"last_click": {bob}, "first_click": {alice}}


def test_settings_name_the_policy_and_refuse_nonsense() -> None:
    env = {
        "REDCART_ADMIN_KEY": "k",
        "REDCART_SECRET_KEY": "s" * 32,
        "REDCART_ATTRIBUTION_MODEL": "linear",
        "REDCART_ATTRIBUTION_CLICK_WINDOW_HOURS": "72",
    }
    settings = Settings.from_env(env)
    assert (settings.attribution_model, settings.attribution_click_window_hours) == ("linear", 72)
    config = PolicySchedule.from_settings(settings).at(T0)
    assert config.click_window == timedelta(hours=72) and config.model.value == "linear"
    assert read_settings({}).commission_refund_window_days == 15
    with pytest.raises(ValueError):
        PolicySchedule.from_settings(read_settings({"REDCART_ATTRIBUTION_MODEL": "data_driven"}))
    with pytest.raises(ValueError, match="positive"):
        PolicySchedule.of(
            [{"model": "last_click", "click_window_hours": 0, "view_window_hours": 1}]
        )
    with pytest.raises(ValueError, match="time zone"):
        PolicySchedule.of(
            [
                {
                    "from": "2026-01-01T00:00:00",
                    "model": "last_click",
                    "click_window_hours": 1,
                    "view_window_hours": 1,
                }
            ]
        )
    with pytest.raises(ValueError, match="payout_day"):
        payable_from(T0, 31)


def test_link_checks_before_the_policy() -> None:
    link = {
        "creator_id": "c",
        "merchant_id": "m",
        "product_id": "p1",
        "rate_bp": 1500,
        "valid_from": "2026-10-01T00:00:00+00:00",
        "valid_until": "2026-12-01T00:00:00+00:00",
        "revoked_at": None,
    }
    creator = {"merchants": {"m": 1000}}

    def click(creator_id: str = "c") -> Touchpoint:
        return Touchpoint("t", TouchpointKind.REFERRAL_CLICK, creator_id, T0, "CODE")

    assert why_not(click(), None, creator, link, "m", {"p1"}) == (None, 1500)
    assert why_not(click(), None, creator, link, "m", {"p2"})[0] == (
        "the referral link is for a product not in this order"
    )
    assert why_not(click("other"), None, creator, link, "m", {"p1"})[0] == (
        "no such referral link of this creator"
    )
    late = link | {"valid_until": "2026-10-15T00:00:00+00:00"}
    assert why_not(click(), None, creator, late, "m", {"p1"})[0] == (
        "the referral link was not valid when clicked"
    )
    note = Touchpoint("n", TouchpointKind.NOTE_CLICK, "c", T0, "note-1")
    assert why_not(note, "p9", creator, None, "m", {"p1"})[0] == (
        "the touchpoint was about a product not in this order"
    )
    assert why_not(note, None, None, None, "m", {"p1"})[0] == "not a registered creator"
