"""Ranking scores: textbook values, then monotonicity under hypothesis."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from projections.read.ranking import (
    EngagementWeights,
    NoteRankingConfig,
    TrendingConfig,
    TrendKey,
    note_rank_score,
    star_rating_lower_bound,
    trending_score,
    wilson_lower_bound,
)

NOW = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)
TRENDING = TrendingConfig(half_life=timedelta(hours=6))
NOTES = NoteRankingConfig()


def test_wilson_known_values():
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(1, 1) == pytest.approx(1 / (1 + 1.96**2))  # n/(n+z²) when all +
    assert wilson_lower_bound(100, 100) == pytest.approx(100 / (100 + 1.96**2))
    assert wilson_lower_bound(5, 10) == pytest.approx(0.2366, abs=1e-4)  # 95 % CI 0.2366–0.7634
    # The bound solves (p̂ - p)² = z² p (1 - p) / n; check that at reddit's z (80 %).
    z, lower = 1.281551565545, wilson_lower_bound(3, 7, z=1.281551565545)
    assert (3 / 7 - lower) ** 2 == pytest.approx(z * z * lower * (1 - lower) / 7)
    with pytest.raises(ValueError):
        wilson_lower_bound(3, 2)


def test_many_good_ratings_beat_one_perfect_one():
    one_perfect = star_rating_lower_bound({5: 1})
    many_good = star_rating_lower_bound({5: 320, 4: 80})  # mean 4.8 stars
    assert many_good > one_perfect
    assert star_rating_lower_bound({5: 7}) == pytest.approx(wilson_lower_bound(7, 7))
    assert star_rating_lower_bound({1: 7}) == 0.0
    assert star_rating_lower_bound({3: 4}) == pytest.approx(wilson_lower_bound(2, 4))
    assert star_rating_lower_bound({}) == 0.0
    with pytest.raises(ValueError):
        star_rating_lower_bound({6: 1})


def test_trending_known_values():
    assert trending_score([("save", NOW)], NOW, TRENDING) == pytest.approx(4.0)
    assert trending_score([("like", NOW - timedelta(hours=6))], NOW, TRENDING) == 0.5
    assert trending_score([("share", NOW - timedelta(hours=12))], NOW, TRENDING) == 1.0
    assert trending_score([("like", NOW + timedelta(hours=1))], NOW, TRENDING) == 0.0
    with pytest.raises(ValueError):
        trending_score([("version", NOW)], NOW, TRENDING)


def test_saves_and_shares_outweigh_likes_and_a_fresh_burst_beats_an_old_pile():
    weights = EngagementWeights()
    assert weights.save > weights.like and weights.share > weights.like
    burst = [("like", NOW - timedelta(hours=1))] * 20
    old_pile = [("like", NOW - timedelta(days=3))] * 1_000
    assert trending_score(burst, NOW, TRENDING) > trending_score(old_pile, NOW, TRENDING)


def test_note_rank_known_value():
    assert note_rank_score({"like": 9}, timedelta(0), NOTES) == pytest.approx(1 / 2**0.8)
    boosted = note_rank_score({"like": 9}, timedelta(0), NOTES, verified_buyer=True)
    assert boosted == pytest.approx(1.25 / 2**0.8)
    assert note_rank_score({}, timedelta(hours=5), NOTES) == 0.0


counts = st.integers(0, 10_000)


@given(positive=counts, extra_positive=counts, negative=counts)
def test_wilson_rises_with_positive_votes(positive, extra_positive, negative):
    total = positive + negative
    more = wilson_lower_bound(positive + extra_positive, total + extra_positive)
    base = wilson_lower_bound(positive, total)
    assert more >= base - 1e-12
    assert base <= (positive / total if total else 0.0) + 1e-12


@given(positive=counts, negative=counts, factor=st.integers(2, 50))
def test_wilson_rises_with_evidence_at_the_same_share(positive, negative, factor):
    total = positive + negative
    assume(total > 0)
    assert wilson_lower_bound(positive * factor, total * factor) >= (
        wilson_lower_bound(positive, total) - 1e-12
    )


@given(histogram=st.dictionaries(st.integers(1, 4), counts), star=st.integers(1, 4))
def test_raising_one_rating_never_lowers_the_star_bound(histogram, star):
    assume(histogram.get(star, 0) > 0)
    raised = dict(histogram)
    raised[star] -= 1
    raised[star + 1] = raised.get(star + 1, 0) + 1
    assert star_rating_lower_bound(raised) >= star_rating_lower_bound(histogram) - 1e-12


kinds = st.sampled_from(["like", "save", "comment", "share", "follow"])
ages = st.integers(0, 30 * 24 * 60).map(lambda m: timedelta(minutes=m))


@given(events=st.lists(st.tuples(kinds, ages), max_size=30), kind=kinds, age=ages)
def test_trending_rises_with_each_interaction_and_fades_with_time(events, kind, age):
    history = [(k, NOW - a) for k, a in events]
    score = trending_score(history, NOW, TRENDING)
    more = trending_score([*history, (kind, NOW - age)], NOW, TRENDING)
    assert more > score if age < timedelta(days=2) else more >= score  # old ones underflow
    later = trending_score(history, NOW + timedelta(hours=1), TRENDING)
    assert later <= score


@given(
    a=st.lists(st.tuples(kinds, ages), max_size=20),
    b=st.lists(st.tuples(kinds, ages), max_size=20),
    later=ages,
)
def test_trend_key_matches_the_direct_score_and_sorts_the_same(a, b, later):
    def key_of(events):
        key = TrendKey()
        for kind, age in events:
            key = key.add(kind, NOW - age, TRENDING)
        return key

    now = NOW + later
    for events in (a, b):
        direct = trending_score([(k, NOW - age) for k, age in events], now, TRENDING)
        assert key_of(events).score_at(now, TRENDING) == pytest.approx(direct, rel=1e-9)
    score_a = trending_score([(k, NOW - age) for k, age in a], now, TRENDING)
    score_b = trending_score([(k, NOW - age) for k, age in b], now, TRENDING)
    if not math.isclose(score_a, score_b, rel_tol=1e-9):
        assert (key_of(a).log2_mass > key_of(b).log2_mass) == (score_a > score_b)


@given(
    base=st.dictionaries(kinds, counts),
    kind=kinds,
    extra=st.integers(1, 100),
    age=ages,
    older=ages,
)
def test_note_rank_rises_with_engagement_and_falls_with_age(base, kind, extra, age, older):
    more = dict(base)
    more[kind] = more.get(kind, 0) + extra
    assert note_rank_score(more, age, NOTES) > note_rank_score(base, age, NOTES)
    assert note_rank_score(base, age + older, NOTES) <= note_rank_score(base, age, NOTES)
