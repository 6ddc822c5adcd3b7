"""Bounded per-room history of reliable events, and the resume decision built on it.

Pure data structure (no I/O, no clock) so the replay rules can be property-tested: a resume is
either the complete, gap-free run of events the client missed, or ``None`` meaning "send a
snapshot instead". There is no third outcome; a partial replay would silently lose events.
"""

from __future__ import annotations

from collections import deque


class ReliableRing:
    """The last ``capacity`` encoded reliable events of one room, keyed by gapless ``seq``.

    ``seq`` starts at 1; ``head_seq`` is 0 while empty. ``epoch`` names this history: a new
    ring (hub restart, room evicted and recreated) gets a new epoch, so offsets from an old one
    are never interpreted against it.
    """

    __slots__ = ("_frames", "capacity", "epoch", "head_seq", "max_replay")

    def __init__(self, epoch: str, capacity: int = 1000, max_replay: int = 300) -> None:
        if capacity < 1 or max_replay < 0:
            raise ValueError("capacity must be >= 1 and max_replay >= 0")
        self.epoch = epoch
        self.capacity = capacity
        self.max_replay = max_replay
        self.head_seq = 0
        self._frames: deque[str] = deque(maxlen=capacity)

    @property
    def oldest_seq(self) -> int:
        """Seq of the oldest retained event (``head_seq + 1`` when empty)."""
        return self.head_seq - len(self._frames) + 1

    def next_seq(self) -> int:
        return self.head_seq + 1

    def append(self, seq: int, frame: str) -> None:
        """Store the encoded event for ``seq``, which must be exactly ``head_seq + 1``."""
        if seq != self.head_seq + 1:
            raise ValueError(f"seq {seq} does not follow head {self.head_seq}")
        self._frames.append(frame)
        self.head_seq = seq

    def replay(self, epoch: str, last_seq: int, upto: int | None = None) -> list[str] | None:
        """Frames with ``last_seq < seq <= upto`` if they can all be served, else ``None``.

        ``upto`` defaults to ``head_seq``; the hub passes the last seq already handed to live
        connections so replay and live stream meet without overlap. ``None`` when the epoch
        differs, the client claims a seq we never issued, the oldest needed event has been
        evicted, or more than ``max_replay`` events are missing (a snapshot is cheaper then).
        """
        upto = self.head_seq if upto is None else upto
        if not 0 <= upto <= self.head_seq:
            raise ValueError(f"upto {upto} outside 0..{self.head_seq}")
        if epoch != self.epoch or last_seq < 0 or last_seq > upto:
            return None
        missing = upto - last_seq
        if missing > self.max_replay or (missing and last_seq + 1 < self.oldest_seq):
            return None
        start = last_seq + 1 - self.oldest_seq
        return [self._frames[i] for i in range(start, start + missing)]
