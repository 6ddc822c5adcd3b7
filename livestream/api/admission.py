"""Which flash claims a process takes on in a burst, and which it sheds with a 503.

A shed claim is the worst answer a viewer can get while units are left: by the time they
retry, the deal has usually sold out. So a process sheds only when it is not keeping up, judged
by how long its oldest claim in flight has waited (CoDel's idea: a queue's delay, not its
length), and past a hard cap that bounds its memory.

This replaced a fixed cap of 256 claims in flight, set when a process committed ~300 claims a
second. Processes now commit 1,500–3,000 a second in a sale, more on a fast machine and fewer
on a slow one; a count that suits one speed sheds claims the other would answer within 100 ms
(BENCHMARKS.md, flash deal, stop 23). A delay holds its meaning at any speed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from itertools import count

MAX_WAIT_S = 1.0  # past this, buyers' apps show a spinner too long; the sale has moved on
HARD_CAP = 4096  # claims in flight per process, whatever their age (~1.4 s of a 3,000/s burst)


class ClaimAdmission:
    """Claims in flight in one process, oldest first."""

    def __init__(
        self,
        max_wait_s: float = MAX_WAIT_S,
        hard_cap: int = HARD_CAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait_s = max_wait_s
        self.hard_cap = hard_cap
        self.clock = clock
        self._started: OrderedDict[int, float] = OrderedDict()  # ticket -> when, oldest first
        self._tickets = count()

    @property
    def in_flight(self) -> int:
        return len(self._started)

    def oldest_wait(self, now: float | None = None) -> float:
        """Seconds the oldest claim in flight has waited (0 with none)."""
        if not self._started:
            return 0.0
        now = self.clock() if now is None else now
        return max(0.0, now - next(iter(self._started.values())))

    def admit(self) -> int | None:
        """A ticket for a claim taken on (give it back with `done`), or None: shed it."""
        now = self.clock()
        if len(self._started) >= self.hard_cap or self.oldest_wait(now) > self.max_wait_s:
            return None
        ticket = next(self._tickets)
        self._started[ticket] = now
        return ticket

    def done(self, ticket: int) -> None:
        self._started.pop(ticket, None)
