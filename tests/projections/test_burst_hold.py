"""A worker holds its catch-up while its log is in a burst (a flash sale's first second), never
for longer than it was told, and catches up at once off a burst (projections.burst).

No database: a log head that the test grows, and (but for the follower's loop) a clock that
the test moves."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.burst import BurstHold
from projections.follow import follow_forever
from redcart.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hold(longest: float = 1.0, clock: Clock | None = None) -> BurstHold:
    # a burst: more than 100 events a second, looked at over the last 0.2 s (20 events)
    return BurstHold(longest, window=0.2, rate=100.0, clock=clock or Clock())


def test_a_quiet_log_is_caught_up_at_once() -> None:
    clock = Clock()
    burst = hold(clock=clock)
    for head in range(1, 51):  # an order every 0.1 s: 10 events a second, never a burst
        clock.now += 0.1
        assert burst.pause(head) == 0


def test_a_burst_is_held_until_the_log_stops_growing() -> None:
    clock = Clock()
    burst = hold(longest=5.0, clock=clock)
    assert burst.pause(1_000) == 0  # the first look: nothing to compare with
    clock.now += 0.05
    pause = burst.pause(1_100)  # 100 events in 50 ms: a sale's claims
    assert 0 < pause <= 0.1
    for head in (1_200, 1_300, 1_400):
        clock.now += pause
        assert burst.pause(head) > 0  # still growing: still held
    for _ in range(10):  # the sale sold out: nothing more is committed
        clock.now += 0.1
        if burst.pause(1_400) == 0:
            break
    else:
        raise AssertionError("still held with a log that stopped growing")
    assert clock.now - 100.0 < 1.0  # released within a window of the last growth, not at 5 s
    assert burst.held_s > 0


def test_a_follower_busy_catching_up_still_sees_the_burst() -> None:
    """Its looks are 0.5 s apart (each catch-up takes that long), wider than the window: the
    growth since its last look still counts."""
    clock = Clock()
    burst = hold(longest=5.0, clock=clock)
    assert burst.pause(0) == 0
    clock.now += 0.5
    assert burst.pause(300) > 0  # 600 events a second


def test_a_burst_that_goes_on_is_caught_up_every_longest_seconds() -> None:
    clock = Clock()
    burst = hold(longest=1.0, clock=clock)
    head, released = 0, []
    for _ in range(400):  # 4 s of 1,000 events a second
        clock.now += 0.01
        head += 10
        if burst.pause(head) == 0:
            released.append(clock.now)
    # the first look, then once each second: never held longer than `longest`
    gaps = [b - a for a, b in itertools.pairwise(released)]
    assert 3 <= len(released) <= 6
    assert max(gaps) <= 1.0 + 0.02


def test_longest_zero_never_holds() -> None:
    clock = Clock()
    burst = hold(longest=0.0, clock=clock)
    for head in range(0, 10_000, 500):
        clock.now += 0.01
        assert burst.pause(head) == 0


@given(
    steps=st.lists(st.tuples(st.floats(0.001, 0.5), st.integers(0, 400)), min_size=1, max_size=200),
    longest=st.floats(0.05, 3.0),
)
def test_no_hold_lasts_longer_than_longest(steps: list[tuple[float, int]], longest: float) -> None:
    """Whatever the log does, the follower waits at most `longest` (plus the one pause it was
    given when the time ran out) before it is told to catch up, and no pause is longer than
    half a window, so a stopped burst is noticed soon."""
    clock = Clock()
    burst = hold(longest=longest, clock=clock)
    head, held_since = 0, None
    for dt, grown in steps:
        clock.now += dt
        head += grown
        pause = burst.pause(head)
        assert 0 <= pause <= 0.1
        if pause == 0:
            held_since = None
            continue
        held_since = clock.now if held_since is None else held_since
        assert clock.now - held_since <= longest + 1e-9


async def test_the_claims_follower_waits_out_a_burst_then_catches_up() -> None:
    """follow_forever (the claim-orders worker's loop) with a hold: while the log grows by
    hundreds of events a second it does not catch up (beyond its first look), and it does once
    the growth stops."""
    log = {"head": 0, "growing": True}
    passes: list[int] = []

    async def catch_up() -> int:
        passes.append(log["head"])
        return 0

    async def grow() -> None:
        for _ in range(60):  # 0.3 s of 2,000 events a second
            log["head"] += 10
            await asyncio.sleep(0.005)
        log["growing"] = False

    wake = asyncio.Event()
    growing = asyncio.create_task(grow())
    hold = BurstHold(5.0, window=0.05, rate=100.0)
    loop = follow_forever(catch_up, lambda: True, wake, logging.getLogger("test"),
                          poll_interval=0.01, retry_after=0.1, hold=hold,
                          head=lambda: log["head"])  # fmt: skip
    following = asyncio.create_task(loop)
    try:
        await growing
        during = len(passes)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if passes and passes[-1] == log["head"]:
                break
        assert during <= 3  # polled every 10 ms: ~30 looks without the hold
        assert passes[-1] == 600  # caught up once it was over, long before the 5 s limit
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following


def test_the_hold_is_a_setting_and_a_bad_one_stops_the_start(tmp_path: Path) -> None:
    base = {"REDCART_VAR_DIR": str(tmp_path), "REDCART_ADMIN_KEY": "a", "REDCART_SECRET_KEY": "s"}
    assert Settings.from_env(base).worker_hold_seconds == 1.0
    assert Settings.from_env({**base, "REDCART_WORKER_HOLD_SECONDS": "0"}).worker_hold_seconds == 0
    for bad in ("-1", "61", "soon"):
        with pytest.raises(ValueError, match="REDCART_WORKER_HOLD_SECONDS must be"):
            Settings.from_env({**base, "REDCART_WORKER_HOLD_SECONDS": bad})
