"""Token buckets with an explicit clock, used for chat, likes and chat delivery sampling.

The caller passes ``now`` (monotonic seconds) so tests and property checks need no sleeping, and
one clock read per incoming message serves every bucket it touches.
"""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full."""

    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def try_take(self, now: float, n: float = 1.0) -> float:
        """Take ``n`` tokens and return 0.0, or take nothing and return seconds until possible."""
        self._refill(now)
        if self._tokens >= n:
            self._tokens -= n
            return 0.0
        return (n - self._tokens) / self.rate

    def take_up_to(self, now: float, n: int) -> int:
        """Take as many whole tokens as available, at most ``n``; return how many were taken."""
        self._refill(now)
        taken = min(n, int(self._tokens))
        self._tokens -= taken
        return taken

    def is_full(self, now: float) -> bool:
        return self.available(now) >= self.burst


class KeyedBuckets:
    """One bucket per key (user id), created on first use; idle full buckets can be pruned."""

    __slots__ = ("_buckets", "_factory")

    def __init__(self, factory: Callable[[float], TokenBucket]) -> None:
        self._factory = factory
        self._buckets: dict[str, TokenBucket] = {}

    def try_take(self, key: str, now: float, n: float = 1.0) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = self._factory(now)
        return bucket.try_take(now, n)

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled completely: they behave exactly like new ones."""
        full = [key for key, bucket in self._buckets.items() if bucket.is_full(now)]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
