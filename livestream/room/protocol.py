"""Wire protocol v1 of the live room socket: message shapes, close codes and encoding.

Everything a client can see on the wire is defined here, so `docs/room-protocol.md` has a single
source to agree with. Server messages are JSON objects; one text frame carries one or more of
them separated by ``"\\n"`` (JSON never contains a raw newline), which lets the hub batch a
burst of events into a single frame without changing how each message looks.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

import msgspec

PROTOCOL_VERSION = 1


class CloseCode(enum.IntEnum):
    """WebSocket close codes the hub sends; the 4xxx range is application-defined (RFC 6455)."""

    NORMAL = 1000
    SERVICE_RESTART = 1012  # hub shutting down: reconnect (with resume) after a backoff
    INTERNAL_ERROR = 1011  # snapshot provider failed
    ROOM_NOT_FOUND = 4004  # the session does not exist: do not reconnect
    SLOW_CONSUMER = 4008  # outbox overflowed: reconnect with resume, you may get a snapshot
    ROOM_CLOSED = 4010  # the live session ended: do not reconnect


class Role(enum.StrEnum):
    VIEWER = "viewer"
    HOST = "host"
    MODERATOR = "moderator"


STAFF_ROLES = frozenset({Role.HOST, Role.MODERATOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user as returned by the injected ``authenticate(token)`` callback."""

    user_id: str
    role: Role = Role.VIEWER

    @property
    def is_staff(self) -> bool:
        """Hosts and moderators: may moderate, and their chat is never sampled out."""
        return self.role in STAFF_ROLES


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """A reliable room event to fan out; the hub stamps it with ``{epoch, seq, ts}``.

    ``data`` should describe absolute state (``units_left: 7``, the whole deal), not deltas: a
    client may receive an event whose effect its snapshot already shows and must be able to
    apply it again harmlessly.
    """

    type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """What a reconnecting client last saw: ``?epoch=..&last_seq=..`` on the socket URL."""

    epoch: str
    last_seq: int


class RoomNotFound(LookupError):
    """Raised by a snapshot provider for a session id that does not exist."""


class RoomEnded(LookupError):
    """Raised by a snapshot provider for a session that is over: the viewer is closed with
    4010 rather than left watching a room nothing will happen in."""


class PermissionDenied(PermissionError):
    """A moderation action by someone who is not host or moderator of the room."""


# --- client -> server -------------------------------------------------------------------------
# Every request may carry an ``id``; replies (ack / error / rate_limited) echo it. For
# ``chat.send`` the id doubles as the idempotency key: a retried send is acked again, not re-posted.


class _Request(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    id: str | None = None


class AuthRequest(_Request, tag="auth"):
    token: str


class ChatSendRequest(_Request, tag="chat.send"):
    text: str


class LikeRequest(_Request, tag="like"):
    n: int = 1


class DeleteMessageRequest(_Request, tag="mod.delete"):
    message_id: str


class MuteRequest(_Request, tag="mod.mute"):
    user_id: str
    duration_s: float | None = None


class UnmuteRequest(_Request, tag="mod.unmute"):
    user_id: str


class BannedWordsRequest(_Request, tag="mod.banned_words"):
    add: list[str] = msgspec.field(default_factory=list)
    remove: list[str] = msgspec.field(default_factory=list)


class PingRequest(_Request, tag="ping"):
    pass


ClientRequest = (
    AuthRequest
    | ChatSendRequest
    | LikeRequest
    | DeleteMessageRequest
    | MuteRequest
    | UnmuteRequest
    | BannedWordsRequest
    | PingRequest
)

_request_decoder = msgspec.json.Decoder(ClientRequest)


def decode_request(text: str | bytes) -> ClientRequest:
    """Parse one client frame; raises ``msgspec.DecodeError`` (incl. ValidationError) if bad."""
    return _request_decoder.decode(text)


# --- server -> client -------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()


def now_ms() -> int:
    """Server wall-clock time in ms; clients compute countdowns from it, never their own clock."""
    return time.time_ns() // 1_000_000


def encode(message: dict[str, Any]) -> str:
    """Encode one server message to the text that goes on the wire (done once per fan-out)."""
    return _encoder.encode(message).decode()


def reliable_message(event: RoomEvent, epoch: str, seq: int) -> str:
    return encode(
        {"type": event.type, "epoch": epoch, "seq": seq, "ts": now_ms(), "data": event.data}
    )


def control_message(type_: str, **fields: Any) -> str:
    """A message outside the reliable stream (no seq): welcome, ack, error, counters, chat."""
    return encode({"type": type_, "ts": now_ms(), **fields})


def error_message(code: str, message: str, request_id: str | None = None) -> str:
    return control_message("error", id=request_id, code=code, message=message)


def rate_limited_message(scope: str, retry_after_s: float, request_id: str | None) -> str:
    return control_message(
        "rate_limited", id=request_id, scope=scope, retry_after_ms=round(retry_after_s * 1000)
    )


class Frame:
    """One outgoing text frame shared by every connection it is fanned out to.

    ``text`` is one or more newline-separated messages; ``count`` how many. ``wire`` is the
    complete unmasked RFC 6455 text frame, built lazily and at most once, so direct writers put
    the very same bytes on every socket (the websockets.broadcast trick, without its silent drops).
    """

    __slots__ = ("_wire", "count", "text")

    def __init__(self, text: str, count: int = 1) -> None:
        self.text = text
        self.count = count
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            payload = self.text.encode()
            size = len(payload)
            if size < 126:
                header = bytes((0x81, size))
            elif size < 1 << 16:
                header = bytes((0x81, 126)) + size.to_bytes(2, "big")
            else:
                header = bytes((0x81, 127)) + size.to_bytes(8, "big")
            wire = self._wire = header + payload
        return wire
