"""Property tests of the resume rules (pure): a replay is complete and gap-free, or refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream.room import ReliableRing
from livestream.room.ratelimit import TokenBucket

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 40)),
        # resume: how far behind ``upto`` the client is (negative: ahead), how far ``upto``
        # (the last flushed seq) lags the head, and whether the client's epoch is current
        st.tuples(st.just("resume"), st.integers(-3, 120), st.integers(0, 400), st.booleans()),
    ),
    max_size=40,
)


@settings(max_examples=400)
@given(
    capacity=st.integers(1, 60),
    max_replay=st.integers(0, 80),
    ops=operations,
)
def test_replay_is_exactly_the_missed_suffix_or_nothing(
    capacity: int, max_replay: int, ops: list[tuple]
) -> None:
    ring = ReliableRing("ep1", capacity, max_replay)
    history: list[str] = []  # model: every event ever appended, seq = index + 1
    for op in ops:
        if op[0] == "append":
            for _ in range(op[1]):
                seq = len(history) + 1
                frame = f"event-{seq}"
                ring.append(seq, frame)
                history.append(frame)
            continue
        _, behind, upto_lag, same_epoch = op
        upto = len(history) - upto_lag % (len(history) + 1)
        last_seq = upto - behind
        epoch = "ep1" if same_epoch else "ep0"
        replay = ring.replay(epoch, last_seq, upto)
        retained_from = max(1, len(history) - capacity + 1)
        servable = (
            same_epoch
            and 0 <= last_seq <= upto
            and upto - last_seq <= max_replay
            and (last_seq + 1 >= retained_from or last_seq == upto)
        )
        if servable:
            assert replay == history[last_seq:upto]
        else:
            assert replay is None
    assert ring.head_seq == len(history)


def test_append_refuses_gaps_and_replays_refuse_unknown_upto() -> None:
    ring = ReliableRing("e", 4)
    ring.append(1, "a")
    with pytest.raises(ValueError, match="does not follow"):
        ring.append(3, "c")
    with pytest.raises(ValueError, match="outside"):
        ring.replay("e", 0, upto=2)
    assert ring.replay("e", 1) == []
    assert ring.replay("e", 0) == ["a"]


@given(st.lists(st.floats(0, 5), max_size=30))
def test_token_bucket_never_exceeds_rate_plus_burst(gaps: list[float]) -> None:
    bucket = TokenBucket(rate=0.5, burst=3, now=0.0)
    now = taken = 0.0
    for gap in gaps:
        now += gap
        while bucket.try_take(now) == 0.0:
            taken += 1
    assert taken <= 3 + 0.5 * now + 1e-9
