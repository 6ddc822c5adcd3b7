"""How many viewers a room has in the other API processes.

Why: each process knows only its own sockets, so with several API processes behind a balancer
every viewer saw a fraction of the room's audience in `room.counters` and the snapshot. Each
hub now tells the others its own count per room over the backplane, when it changes and every
few seconds while it has viewers, and adds the counts it hears. A process that stops telling
(it died) drops out after `STALE_S`. Counts are shown about once a second, so a count a second
or two old is what viewers would see anyway.
"""

from __future__ import annotations

HEARTBEAT_S = 5.0  # a process with viewers in a room says so at least this often
STALE_S = 15.0  # a count not heard again for this long belongs to a process that is gone


class Presence:
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self._heard: dict[str, dict[str, tuple[int, float]]] = {}  # room -> process -> (n, when)
        self._told: dict[str, tuple[int, float]] = {}  # room -> (n, when) this process said

    def heard(self, room_id: str, instance: str, viewers: int, now: float) -> None:
        """Another process's count for a room (our own, looped back, is ignored)."""
        if instance == self.instance_id:
            return
        counts = self._heard.setdefault(room_id, {})
        if viewers > 0:
            counts[instance] = (viewers, now)
        else:
            counts.pop(instance, None)

    def elsewhere(self, room_id: str, now: float) -> int:
        """Viewers of the room in the other processes that are still telling."""
        counts = self._heard.get(room_id)
        if not counts:
            return 0
        for instance, (_, when) in tuple(counts.items()):
            if now - when > STALE_S:
                del counts[instance]
        return sum(n for n, _ in counts.values())

    def to_tell(self, room_id: str, viewers: int, now: float) -> bool:
        """Whether to tell the others this process's count now: it changed, or a heartbeat is
        due while there are viewers. Assumes it will be told."""
        told = self._told.get(room_id)
        if told is None and viewers == 0:  # nobody was told of any: nothing to take back
            return False
        fresh = told is not None and (viewers == 0 or now - told[1] < HEARTBEAT_S)
        if fresh and told[0] == viewers:
            return False
        self._told[room_id] = (viewers, now)
        return True

    def prune(self, now: float) -> None:
        """Drop what was heard from processes that stopped telling, whatever the room."""
        for room_id in tuple(self._heard):
            if not self.elsewhere(room_id, now):
                del self._heard[room_id]

    def forget(self, room_id: str) -> None:
        self._heard.pop(room_id, None)
        self._told.pop(room_id, None)
