"""Each flash deal has an advisory lock of its own: two deals whose ids end alike (the key used
to be the id's last 32 bits) are owned by different processes at the same time."""

from __future__ import annotations

from uuid import UUID, uuid4

import psycopg
import pytest

from livestream.engine.ownership import AdvisoryOwnership, lock_key
from projections.lease import AdvisoryLease


def alike(deal: UUID, same: slice) -> UUID:
    """Another random deal id, with `deal`'s bytes in `same`."""
    other = bytearray(uuid4().bytes)
    other[same] = deal.bytes[same]
    return UUID(bytes=bytes(other))


def test_deals_whose_ids_share_their_last_or_first_bytes_get_different_keys() -> None:
    deal = uuid4()
    for same in (slice(12, 16), slice(8, 16), slice(0, 8), slice(0, 12)):
        other = alike(deal, same)
        assert lock_key(other) != lock_key(deal), same
    assert lock_key(UUID(str(deal))) == lock_key(deal)  # the same deal, the same lock


def test_deal_keys_are_bigints_that_never_meet_a_singleton_leases_key() -> None:
    """The singleton jobs' leases lock bigints too: CRC-32s of their names, never negative."""
    keys = [lock_key(uuid4()) for _ in range(1000)] + [
        lock_key(UUID(int=0)),
        lock_key(UUID(int=(1 << 128) - 1)),
    ]
    assert all(-(1 << 63) <= key < 0 for key in keys)
    assert len(set(keys)) == len(keys) - 1  # the last two fold to the same key, and no others
    lease = AdvisoryLease("postgresql://unused", "redcart:payments_process")  # connects lazily
    assert 0 <= lease.key < 1 << 32


@pytest.mark.postgres
def test_two_processes_each_own_one_of_two_deals_whose_ids_end_alike(postgres_url: str) -> None:
    AdvisoryOwnership.migrate(postgres_url)
    first_deal = uuid4()
    second_deal = alike(first_deal, slice(12, 16))
    first = AdvisoryOwnership(postgres_url, "http://127.0.0.1:9001")
    second = AdvisoryOwnership(postgres_url, "http://127.0.0.1:9002")
    try:
        assert first.acquire(first_deal)
        assert second.acquire(second_deal)  # refused while the key was the last 32 bits
        assert first.owned() == {first_deal} and second.owned() == {second_deal}
        assert first.owner_url(second_deal) == "http://127.0.0.1:9002"
        assert second.owner_url(first_deal) == "http://127.0.0.1:9001"

        # still one owner per deal, and a deal given up is free for the other process
        assert not second.acquire(first_deal)
        assert not first.acquire(second_deal)
        first.release(first_deal)
        assert second.acquire(first_deal)
        assert second.owned() == {first_deal, second_deal}
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            held = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) IN (%s, %s)",
                (lock_key(first_deal), lock_key(second_deal)),
            ).fetchone()[0]
        assert held == 2  # the two single-bigint locks, both held by the second process
    finally:
        first.close()
        second.close()
