"""Holding a background follower back while its log is in a burst (a flash sale's first second).

Why: the claim-orders and read-model workers catch up on every commit, so in a sale's first
second, when a thousand claims commit together, they take their share of the cores exactly when
the API's event loop needs them most. Measured (BENCHMARKS.md, stop 19): with both workers
stopped for the sale, a run shed 164–180 claims against 229–1,216 with them running, and its
p99 fell in every pair. Their work is the same whether it is done now or a moment later, and a
later pass does it in larger batches; what a viewer waits for is the claim's answer, which is
given once the claim is committed, not once its order or the product page has caught up.

So while the log grows faster than `rate` events a second (since the look before the last
`window` seconds: a follower busy catching up looks less often), a follower holds its catch-up
until the growth slows, but never for longer than `longest` seconds: under sustained load it
still catches up once every `longest`. Off a burst it catches up at once, as before. What it
costs: orders and read models may lag up to `longest` more during a burst (a claim reads
`placing` until its order is placed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 0.25
BURST_EVENTS_PER_S = 200.0


class BurstHold:
    def __init__(
        self,
        longest: float,
        *,
        window: float = WINDOW_S,
        rate: float = BURST_EVENTS_PER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if longest < 0 or window <= 0 or rate <= 0:
            raise ValueError("longest must be ≥ 0; window and rate positive")
        self.longest, self.window, self.clock = longest, window, clock
        self.rate = rate
        # (when, head): the looks of the last `window` seconds, and the one before them (a
        # follower busy catching up looks less often than once a window, and is still in a burst)
        self._seen: deque[tuple[float, int]] = deque()
        self._since: float | None = None  # when the current hold began
        self.held_s = 0.0  # time spent holding, for the worker's log

    def pause(self, head: int) -> float:
        """Seconds to wait before looking again (the caller then asks again with the head it
        sees then), or 0: catch up now."""
        now = self.clock()
        seen = self._seen
        seen.append((now, head))
        while len(seen) > 1 and now - seen[1][0] > self.window:
            seen.popleft()
        since, then = seen[0]
        growth = (head - then) / max(now - since, self.window)  # events a second, about
        if not self.longest or growth < self.rate:
            return self._release(now)
        if self._since is None:
            self._since = now
        left = self.longest - (now - self._since)
        if left <= 0:
            return self._release(now)
        return min(self.window / 2, left)

    def _release(self, now: float) -> float:
        if self._since is not None:
            self.held_s += now - self._since
            self._since = None
        return 0.0

    def wait(self, head: Callable[[], int], sleep: Callable[[float], object]) -> None:
        """Hold a threaded follower: look at `head()` and `sleep` until it may catch up.
        `sleep` returning true (a stop event's wait) ends the hold early."""
        while (pause := self.pause(head())) > 0:
            if sleep(pause):
                return


def hold_for(longest: float) -> BurstHold | None:
    """A follower's hold for the setting (`REDCART_WORKER_HOLD_SECONDS`): none at 0, so that a
    follower that never holds does not ask for its log's head before each pass."""
    return BurstHold(longest) if longest > 0 else None
