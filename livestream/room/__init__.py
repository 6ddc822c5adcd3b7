"""Websocket room hub for live sessions: reliable ``{epoch, seq}`` events with resume,
coalesced counters, rate-limited and moderated chat, slow-consumer protection.

Wire protocol: docs/room-protocol.md. Typical wiring::

    hub = RoomHub(snapshot_provider)
    app = Litestar(route_handlers=room_routes(hub, authenticate), on_shutdown=[hub.stop])
    await hub.publish(session_id, RoomEvent("deal.opened", {...}))
"""

from .backplane import Backplane, BackplaneMessage, InMemoryBackplane
from .chat import ChatLimits, Duplicate, Rejection
from .connection import FrameKind, FrameSink, OutboxLimits
from .hub import RoomHub, RoomHubConfig, SnapshotProvider
from .protocol import (
    CloseCode,
    PermissionDenied,
    Principal,
    ResumePoint,
    Role,
    RoomEnded,
    RoomEvent,
    RoomNotFound,
)
from .ring import ReliableRing
from .routes import Authenticate, room_routes

__all__ = [
    "Authenticate",
    "Backplane",
    "BackplaneMessage",
    "ChatLimits",
    "CloseCode",
    "Duplicate",
    "FrameKind",
    "FrameSink",
    "InMemoryBackplane",
    "OutboxLimits",
    "PermissionDenied",
    "Principal",
    "Rejection",
    "ReliableRing",
    "ResumePoint",
    "Role",
    "RoomEnded",
    "RoomEvent",
    "RoomHub",
    "RoomHubConfig",
    "RoomNotFound",
    "SnapshotProvider",
    "room_routes",
]
