"""Many buyers like one note at the same moment, one of them over and over: every distinct like
counts exactly once, the repeated one once, and the event store sees a handful of coalesced
counts instead of one event per click. On SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from tests.integration.conftest import sign_up
from tests.social.conftest import Social, events, runtime

FANS, REPEATS = 40, 10


def test_concurrent_likes_count_once_each_in_few_events(social: Social) -> None:
    c = social.client
    runtime(c).engagement.interval = 0.15  # the production window
    note = social.note()["id"]
    fans = [sign_up(c, f"fan{i}") for i in range(FANS)]
    eager = fans[0]
    clicks = [*fans, *([eager] * (REPEATS - 1))]
    barrier = Barrier(len(clicks))

    def like(headers: dict) -> tuple[int, bool]:
        barrier.wait()
        r = c.post(f"/notes/{note}/like", headers=headers)
        return r.status_code, r.json().get("liked")

    with ThreadPoolExecutor(max_workers=len(clicks)) as pool:
        answers = list(pool.map(like, clicks))
    assert answers == [(200, True)] * len(clicks)
    assert c.get(f"/notes/{note}").json()["counts"]["likes"] == FANS
    assert runtime(c).engagement.ledger.totals(note)["likes"] == FANS
    counted = events(c, "commerce.Note.EngagementCounted")
    assert sum(e.likes for e in counted) == FANS
    assert len(counted) <= len(clicks) // 5, f"{len(counted)} events for {len(clicks)} clicks"
