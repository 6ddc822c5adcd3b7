"""Holds keep a running total; it must always equal the plain sum it replaces."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from commerce.domain.holds import Holds

T0 = datetime(2026, 11, 11, tzinfo=UTC)
ids = st.integers(0, 7).map(lambda n: UUID(int=n))
times = st.integers(0, 20).map(lambda m: T0 + timedelta(minutes=m))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), ids, st.integers(1, 5), st.one_of(st.none(), times)),
        st.tuples(st.just("drop"), ids, st.just(0), st.none()),
    ),
    max_size=40,
)


def naive(holds: dict, now: datetime) -> tuple[int, set]:
    live = sum(q for q, until in holds.values() if until is None or until > now)
    lapsed = {k for k, (_, until) in holds.items() if until is not None and until <= now}
    return live, lapsed


@given(ops, times)
def test_the_live_total_and_lapsed_holds_match_a_plain_sum(operations: list, now: datetime) -> None:
    holds, model = Holds(), {}
    for kind, key, quantity, until in operations:
        if kind == "hold":
            holds[key] = model[key] = (quantity, until)
        elif key in model:
            del holds[key], model[key]
        live, lapsed = naive(model, now)
        assert holds.live_total(now) == live
        assert set(holds.lapsed(now)) == lapsed
        assert dict(holds) == model
    clone = copy.deepcopy(holds)
    assert clone.live_total(now) == holds.live_total(now)
    assert set(clone.lapsed(now)) == set(holds.lapsed(now))
