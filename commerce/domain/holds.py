"""Quantities held until a deadline, or for good once confirmed: stock reservations and CBEC
quota holds.

Why a structure of its own: under a 15-minute TTL a hot SKU carries thousands of live holds,
and every order asks how much is held *now*. Summing them each time made that O(holds); here
the total is kept as holds come and go, and only the (usually few) lapsed ones are subtracted,
found by bisecting a list kept sorted by deadline.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from datetime import datetime
from uuid import UUID

_LAST = UUID(int=(1 << 128) - 1)


class Holds(dict[UUID, tuple[int, datetime | None]]):
    """A dict of hold id -> (quantity, deadline or None) that knows its live total."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self._deadlines: list[tuple[datetime, UUID]] = []  # holds that can still lapse

    def __setitem__(self, key: UUID, value: tuple[int, datetime | None]) -> None:
        if key in self:
            self._forget(key)
        super().__setitem__(key, value)
        self.total += value[0]
        if value[1] is not None:
            insort(self._deadlines, (value[1], key))

    def __delitem__(self, key: UUID) -> None:
        self._forget(key)
        super().__delitem__(key)

    def _forget(self, key: UUID) -> None:
        quantity, until = self[key]
        self.total -= quantity
        if until is not None:
            i = bisect_right(self._deadlines, (until, key)) - 1
            del self._deadlines[i]

    def lapsed(self, now: datetime) -> list[UUID]:
        return [key for _, key in self._deadlines[: bisect_right(self._deadlines, (now, _LAST))]]

    def live_total(self, now: datetime) -> int:
        return self.total - sum(self[key][0] for key in self.lapsed(now))

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # deepcopy/pickle rebuild through __setitem__, so the bookkeeping comes along
        return (Holds, (), None, None, iter(self.items()))
