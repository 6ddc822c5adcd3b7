"""SweptHolds carries the lapsed sum forward with the clock; it must always agree with the plain
sum it replaces, whichever way time is read."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from livestream.domain.lapsing import SweptHolds

T0 = datetime(2026, 11, 11, tzinfo=UTC)
ids = st.integers(0, 7).map(lambda n: UUID(int=n))
times = st.integers(0, 20).map(lambda m: T0 + timedelta(minutes=m))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), ids, st.integers(1, 5), st.one_of(st.none(), times)),
        st.tuples(st.just("drop"), ids, st.just(0), st.none()),
        st.tuples(st.just("read"), ids, st.just(0), times),
    ),
    max_size=60,
)


def plain_live_total(holds: dict, now: datetime) -> int:
    return sum(q for q, until in holds.values() if until is None or until > now)


@given(ops, times)
def test_the_live_total_matches_a_plain_sum_at_any_time(operations: list, now: datetime) -> None:
    holds, model = SweptHolds(), {}
    for kind, key, quantity, moment in operations:
        if kind == "hold":
            holds[key] = model[key] = (quantity, moment)
        elif kind == "drop" and key in model:
            del holds[key], model[key]
        elif kind == "read":  # moves the sweep, forwards or backwards
            assert holds.live_total(moment) == plain_live_total(model, moment)
        assert holds.live_total(now) == plain_live_total(model, now)
        assert dict(holds) == model
    clone = copy.deepcopy(holds)
    assert type(clone) is SweptHolds
    assert clone.live_total(now) == holds.live_total(now)


def test_a_hold_whose_deadline_already_passed_never_counts() -> None:
    holds = SweptHolds()
    holds[UUID(int=1)] = (3, T0 + timedelta(minutes=5))
    assert holds.live_total(T0 + timedelta(minutes=10)) == 0
    holds[UUID(int=2)] = (2, T0 + timedelta(minutes=7))  # lapsed before it was added
    assert holds.live_total(T0 + timedelta(minutes=10)) == 0
    assert holds.live_total(T0 + timedelta(minutes=6)) == 2
    assert holds.live_total(T0) == 5
