"""The seam for cross-process fan-out: every state change of a room passes through a Backplane.

The hub never applies a change directly; it publishes a ``BackplaneMessage`` and applies what the
backplane delivers, including its own messages. With ``InMemoryBackplane`` that is a synchronous
loop-back (one process). ``PgBackplane`` (pg_backplane.py, PostgreSQL LISTEN/NOTIFY) delivers the
same messages to every process; each process then sequences reliable events itself, so each
process has its own epoch per room and a client that reconnects to another process gets a
snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec


class BackplaneMessage(msgspec.Struct, frozen=True):
    """One room change. ``kind`` is one of: event, units_left, likes, chat, chat.delete, mute,
    unmute, banned_words, user (a message for one user's sockets), room.closed, viewers (one
    process's count of its sockets in the room), or ``RESYNC``.
    ``data`` is JSON-serialisable so it can cross processes.
    """

    room_id: str
    kind: str
    data: dict[str, Any]


RESYNC = "backplane.resync"
"""Kind of a message a backplane delivers locally (never publishes) when messages may have been
lost, e.g. after its listening connection dropped; ``room_id`` is ``""`` and ``data`` has a
``reason``. The hub then starts a new epoch in every room so viewers re-snapshot."""

BackplaneHandler = Callable[[BackplaneMessage], None]


class Backplane(Protocol):
    def attach(self, handler: BackplaneHandler) -> None:
        """Register the hub's apply function; called once per hub."""

    async def publish(self, message: BackplaneMessage) -> None:
        """Deliver ``message`` to every attached hub (this process and, later, the others)."""

    async def close(self) -> None: ...


class InMemoryBackplane:
    """Single-process backplane: ``publish`` applies the message synchronously before returning.

    So after ``await hub.publish(...)`` returns the event has its seq and is queued for fan-out,
    which keeps tests and the single-process deployment simple and ordered.
    """

    def __init__(self) -> None:
        self._handlers: list[BackplaneHandler] = []

    def attach(self, handler: BackplaneHandler) -> None:
        self._handlers.append(handler)

    async def publish(self, message: BackplaneMessage) -> None:
        for handler in self._handlers:
            handler(message)

    async def close(self) -> None:
        self._handlers.clear()
