"""Scores for ordering what a product page shows (research/commerce.md §3.2).

- Ratings sort by the Wilson lower bound, not by the mean. One 5-star review must not outrank
  four hundred reviews averaging 4.8 (Evan Miller, "How Not To Sort By Average Rating").
- "Trending" is engagement velocity: each interaction counts with its weight and fades with a
  half-life. A projection keeps that as one number that never needs rescoring (`TrendKey`).
- Notes on a product page rank by damped engagement divided by an age gravity (Hacker News
  style), so a fresh note with a little traction can surface above a stale popular one.

Every weight lives in config, because the only published RED weights ("CES") are third-party
guesses; store the config version next to any score you persist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Z_95 = 1.96
TREND_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def wilson_lower_bound(positive: float, total: float, z: float = Z_95) -> float:
    """Lower bound of the Wilson score interval for the share of positive ratings.

    `positive` may be fractional (see `star_rating_lower_bound`); no ratings scores 0.
    """
    if total <= 0:
        return 0.0
    if not 0 <= positive <= total:
        raise ValueError("positive must be between 0 and total")
    phat = positive / total
    z2 = z * z
    centre = phat + z2 / (2 * total)
    spread = z * math.sqrt((phat * (1 - phat) + z2 / (4 * total)) / total)
    return max(0.0, (centre - spread) / (1 + z2 / total))


def star_rating_lower_bound(stars_histogram: Mapping[int, int], z: float = Z_95) -> float:
    """Wilson lower bound for 1–5 star ratings, as a share in [0, 1] (×4 + 1 gives stars).

    Each rating counts as a fraction of a positive: 1★ = 0, 3★ = 0.5, 5★ = 1. The Wilson
    interval uses the Bernoulli variance p(1-p), which is the largest variance any score in
    [0, 1] with mean p can have. So the bound is, if anything, cautious. It keeps the plain
    thumbs-up case (only 1★ and 5★) exactly equal to the textbook formula, with no invented
    threshold such as "4★ and up is positive".
    """
    if any(star not in range(1, 6) or count < 0 for star, count in stars_histogram.items()):
        raise ValueError("histogram keys are stars 1..5, counts non-negative")
    total = sum(stars_histogram.values())
    positive = sum(count * (star - 1) / 4 for star, count in stars_histogram.items())
    return wilson_lower_bound(min(positive, total), total, z)


@dataclass(frozen=True)
class EngagementWeights:
    """Per-interaction weights. Saves and shares show more intent than a like."""

    like: float = 1.0
    save: float = 4.0
    comment: float = 4.0
    share: float = 4.0
    follow: float = 8.0
    version: str = "engagement-v1"

    def of(self, kind: str) -> float:
        weight = getattr(self, kind, None)
        if not isinstance(weight, float | int):
            raise ValueError(f"unknown engagement kind {kind!r}")
        return float(weight)

    def weighted(self, counts: Mapping[str, int]) -> float:
        return sum(self.of(kind) * count for kind, count in counts.items())


@dataclass(frozen=True)
class TrendingConfig:
    weights: EngagementWeights = field(default_factory=EngagementWeights)
    half_life: timedelta = timedelta(hours=6)


def trending_score(
    interactions: Iterable[tuple[str, datetime]], now: datetime, config: TrendingConfig
) -> float:
    """Sum of weight · 2^(-age / half_life) over interactions up to `now`.

    With a steady rate r per hour this settles at r · half_life / ln 2. So it reads as a
    velocity, and a burst in the last hours outweighs a larger total from last week.
    """
    half_life = config.half_life.total_seconds()
    score = 0.0
    for kind, at in interactions:
        age = (now - at).total_seconds()
        if age >= 0:
            score += config.weights.of(kind) * 2.0 ** (-age / half_life)
    return score


@dataclass(frozen=True)
class TrendKey:
    """The trending score in a form that a projection can update one event at a time.

    It stores log2(Σ w · 2^(t / half_life)), with t in seconds since `TREND_EPOCH`. Every row decays
    by the same factor, so sorting by `log2_mass` sorts by trending score at any moment. Rows
    never need rescoring, and the log keeps the number finite however long the system runs
    (the reddit `hot` idea, made exact).
    """

    log2_mass: float = -math.inf

    def add(self, kind: str, at: datetime, config: TrendingConfig) -> TrendKey:
        weight = config.weights.of(kind)
        if weight <= 0:
            return self
        term = _epoch_seconds(at) / config.half_life.total_seconds() + math.log2(weight)
        high, low = max(self.log2_mass, term), min(self.log2_mass, term)
        if low == -math.inf:
            return TrendKey(high)
        return TrendKey(high + math.log2(1.0 + 2.0 ** (low - high)))

    def score_at(self, now: datetime, config: TrendingConfig) -> float:
        if self.log2_mass == -math.inf:
            return 0.0
        return 2.0 ** (self.log2_mass - _epoch_seconds(now) / config.half_life.total_seconds())


def _epoch_seconds(at: datetime) -> float:
    return (at - TREND_EPOCH).total_seconds()


@dataclass(frozen=True)
class NoteRankingConfig:
    weights: EngagementWeights = field(default_factory=EngagementWeights)
    gravity: float = 0.8  # how fast age pulls a note down; HN uses 1.8 for a news front page
    verified_buyer_boost: float = 1.25  # a note from someone who bought the product


def note_rank_score(
    counts: Mapping[str, int],
    age: timedelta,
    config: NoteRankingConfig,
    *,
    verified_buyer: bool = False,
) -> float:
    """Score one note on a product page: log10(1 + engagement) / (age_hours + 2)^gravity.

    The log means the first 10 interactions count as much as the next 90. Without it one viral
    note would hold the top slot forever. This is also the `engagement` passed to search.
    """
    if any(count < 0 for count in counts.values()):
        raise ValueError("counts must be non-negative")
    hours = max(age.total_seconds(), 0.0) / 3600
    score = math.log10(1.0 + config.weights.weighted(counts)) / (hours + 2.0) ** config.gravity
    return score * (config.verified_buyer_boost if verified_buyer else 1.0)
