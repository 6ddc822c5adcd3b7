"""The singleton jobs' lease (a PostgreSQL advisory lock): one holder at a time, and a lease
released at shutdown stays released, so that the next process takes it at once."""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest

from projections.lease import AdvisoryLease

pytestmark = pytest.mark.postgres


def test_one_holder_at_a_time_and_the_next_takes_over_when_it_lets_go(postgres_url: str) -> None:
    name = f"test-lease-{uuid4()}"
    first, second = AdvisoryLease(postgres_url, name), AdvisoryLease(postgres_url, name)
    try:
        assert first.held() and first.held()  # held, and still held
        assert not second.held()
        first.release()
        assert second.held()
    finally:
        first.release()
        second.release()


def test_a_look_that_comes_after_the_release_does_not_take_the_lease_again(
    postgres_url: str,
) -> None:
    """A follower's look at its lease runs in a thread that cancelling its task does not stop;
    one arriving just after shutdown released the lease must not take it back."""
    name = f"test-lease-{uuid4()}"
    shutting_down, restarted = AdvisoryLease(postgres_url, name), AdvisoryLease(postgres_url, name)
    try:
        assert shutting_down.held()
        shutting_down.release()
        late: list[bool] = []
        look = threading.Thread(target=lambda: late.append(shutting_down.held()))
        look.start()
        look.join(10)
        assert late == [False]
        assert restarted.held()  # the restarted process gets it at once
    finally:
        shutting_down.release()
        restarted.release()
