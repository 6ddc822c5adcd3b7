"""Experiment for `redcart bench fanout`, not part of the product: paced reliable flushes.

Why: on loopback each viewer write costs ~10-25 µs of kernel time, so one event to 5,000
viewers costs 50-130 ms whatever the Python code does. When the server gets less CPU than
``rate × that`` (other load on 2 cores), flushing every event on its own falls further and
further behind (seconds of latency). Batching only when saturated keeps up: if the last flush
of a room ended less than 10% of its own duration ago (the loop did almost nothing else in
between), the next flush waits one flush-duration (≤ 100 ms, the hub tick) so that the events
arriving meanwhile share one frame. When not saturated nothing is delayed.

Run with ``REDCART_BENCH_SERVER_APP=bench.fanout_paced:paced_hub_app``. If it helps, the same
lines belong in ``Room.flush_reliable`` (livestream/room/room.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.fanout_server import hub_app

MAX_DELAY_S = 0.1


def _install() -> None:
    from livestream.room.room import Room

    original = Room.flush_reliable
    if getattr(original, "paced", False):
        return

    def flush_reliable(self: Any) -> None:
        now = time.perf_counter()
        cost = getattr(self, "_flush_cost", 0.0)
        idle = now - getattr(self, "_flush_end", 0.0)
        if self._pending_reliable and not getattr(self, "_deferred", False) and idle < cost / 10:
            self._deferred = self._flush_scheduled = True
            asyncio.get_running_loop().call_later(min(cost, MAX_DELAY_S), self.flush_reliable)
            return
        self._deferred = False
        original(self)
        end = time.perf_counter()
        self._flush_cost, self._flush_end = end - now, end

    flush_reliable.paced = True  # type: ignore[attr-defined]
    Room.flush_reliable = flush_reliable  # type: ignore[method-assign]


def paced_hub_app() -> Any:
    """uvicorn --factory target: bench.fanout_server.hub_app with paced flushes."""
    _install()
    return hub_app()
