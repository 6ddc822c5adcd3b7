"""Holds whose live total stays cheap however many of them lapse unrecorded.

`Holds.live_total` subtracts every lapsed hold on each call, which is right for stock (a sweeper
records expiries every few seconds) but not for a flash deal's claim path: between sweeps a
popular deal may carry hundreds of lapsed claims, and every one of thousands of claims a second
would walk them again. Here the sum of lapsed quantities is carried forward with the clock, so
each hold is added to it once as time passes its deadline: O(log n) for the bisects plus
amortised O(1) per hold while time moves forward (a single writer's clock does). A read with an
earlier time is still exact; it adds back only the holds between that time and the latest one.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from uuid import UUID

from commerce.domain.holds import Holds

_LAST = UUID(int=(1 << 128) - 1)  # sorts after every id, so (t, _LAST) bisects past time t


class SweptHolds(Holds):
    """Holds with a running sum of the quantities that lapsed by the latest time read."""

    def __init__(self) -> None:
        super().__init__()
        self._swept_to: datetime | None = None
        self._swept_total = 0  # quantity of holds whose deadline <= _swept_to

    def _swept(self, until: datetime | None) -> bool:
        return until is not None and self._swept_to is not None and until <= self._swept_to

    def __setitem__(self, key: UUID, value: tuple[int, datetime | None]) -> None:
        if key in self:
            self._unsweep(key)
        super().__setitem__(key, value)
        if self._swept(value[1]):
            self._swept_total += value[0]

    def __delitem__(self, key: UUID) -> None:
        self._unsweep(key)
        super().__delitem__(key)

    def _unsweep(self, key: UUID) -> None:
        quantity, until = self[key]
        if self._swept(until):
            self._swept_total -= quantity

    def _position(self, moment: datetime | None) -> int:
        return 0 if moment is None else bisect_right(self._deadlines, (moment, _LAST))

    def live_total(self, now: datetime) -> int:
        swept_to = self._swept_to
        if swept_to is None or now >= swept_to:
            for _, key in self._deadlines[self._position(swept_to) : self._position(now)]:
                self._swept_total += self[key][0]
            self._swept_to = now
            return self.total - self._swept_total
        back = self._deadlines[self._position(now) : self._position(swept_to)]
        return self.total - self._swept_total + sum(self[key][0] for _, key in back)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # rebuild as this class (Holds' own reduce would give a plain Holds); the sweep restarts
        return (type(self), (), None, None, iter(self.items()))
