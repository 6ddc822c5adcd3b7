"""Trending: decayed engagement velocity with configurable weights, and the feed endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient

from projections.read.ranking import TrendKey
from projections.trending import shift, trending_config_from_env
from tests.projections.conftest import Shop, eventually, sign_up

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CONFIG = trending_config_from_env({})


def test_a_mass_is_the_weighted_amount_and_halves_every_half_life() -> None:
    mass = shift(None, 8.0, T0, CONFIG)
    assert TrendKey(mass).score_at(T0, CONFIG) == pytest.approx(8.0)
    assert TrendKey(mass).score_at(T0 + CONFIG.half_life, CONFIG) == pytest.approx(4.0)
    later = shift(mass, 4.0, T0 + CONFIG.half_life, CONFIG)
    assert TrendKey(later).score_at(T0 + CONFIG.half_life, CONFIG) == pytest.approx(8.0)


def test_a_recent_burst_beats_a_bigger_old_total() -> None:
    old = shift(None, 100.0, T0, CONFIG)
    burst = shift(None, 20.0, T0 + timedelta(days=1), CONFIG)
    assert burst > old  # sorting by mass is sorting by score, at any moment


def test_an_unlike_takes_its_amount_back_but_never_below_zero() -> None:
    mass = shift(None, 5.0, T0, CONFIG)
    less = shift(mass, -2.0, T0, CONFIG)
    assert TrendKey(less).score_at(T0, CONFIG) == pytest.approx(3.0)
    assert shift(less, -10.0, T0, CONFIG) is None


def test_weights_come_from_settings_and_name_their_version() -> None:
    assert CONFIG.weights.of("save") > CONFIG.weights.of("like")
    assert CONFIG.weights.of("share") > CONFIG.weights.of("like")
    custom = trending_config_from_env(
        {"REDCART_TRENDING_WEIGHTS": '{"save": 9, "view": 0.1}',
         "REDCART_TRENDING_HALF_LIFE_HOURS": "12"}
    )  # fmt: skip
    assert custom.weights.of("save") == 9 and custom.half_life == timedelta(hours=12)
    assert custom.weights.version != CONFIG.weights.version
    for bad in ('{"clicks": 1}', '{"like": -1}', "[1]"):
        with pytest.raises(ValueError):
            trending_config_from_env({"REDCART_TRENDING_WEIGHTS": bad})


def test_the_feed_ranks_saved_notes_above_liked_ones(client: TestClient) -> None:
    shop = Shop(client)
    author, fans = sign_up(client, "author"), [sign_up(client, f"fan{i}") for i in range(3)]
    note = {"title": "点赞多的笔记", "product_ids": []}
    liked = client.post("/notes", headers=author, json=note).json()["id"]
    note = {"title": "收藏多的笔记", "product_ids": [shop.product]}
    saved = client.post("/notes", headers=author, json=note).json()["id"]
    for fan in fans:
        assert client.post(f"/notes/{liked}/like", headers=fan).status_code == 200
    assert client.post(f"/notes/{saved}/save", headers=fans[0]).status_code == 200

    def ranked() -> dict:
        r = client.get("/feed/trending", params={"kind": "note"})
        assert r.status_code == 200, r.text
        assert [item["id"] for item in r.json()["items"]] == [saved, liked]
        return r.json()

    feed = eventually(ranked)
    scores = [item["score"] for item in feed["items"]]
    assert scores[0] == pytest.approx(4.0, rel=0.01) and scores[1] == pytest.approx(3.0, rel=0.01)
    assert feed["score_version"] == CONFIG.weights.version and feed["half_life_hours"] == 6
    products = client.get("/feed/trending", params={"kind": "product"}).json()["items"]
    assert [p["id"] for p in products] == [shop.product]
