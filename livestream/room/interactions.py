"""Viewer interactions on a room: chat, likes, moderation, and the socket request dispatcher.

A mixin of ``RoomHub`` kept in its own module so each file stays readable; it only relies on the
few hub members declared below. Moderation rights are checked here, where the request arrives;
the resulting change then travels through the backplane like any other room change.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .chat import Duplicate, Rejection
from .connection import Connection
from .protocol import (
    BannedWordsRequest,
    ChatSendRequest,
    ClientRequest,
    DeleteMessageRequest,
    LikeRequest,
    MuteRequest,
    PermissionDenied,
    PingRequest,
    Principal,
    UnmuteRequest,
    control_message,
    error_message,
    now_ms,
    rate_limited_message,
)
from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .hub import RoomHubConfig
    from .room import Room


def _require_staff(actor: Principal | None) -> None:
    if actor is None or not actor.is_staff:
        raise PermissionDenied("only the host or a moderator may do this")


class RoomInteractions:
    config: RoomHubConfig
    instance_id: str
    _ids: itertools.count[int]
    _clock: Callable[[], float]
    _like_buckets: dict[str, TokenBucket]

    def _room(self, room_id: str) -> Room:
        raise NotImplementedError

    async def _send(self, room_id: str, kind: str, data: dict[str, Any]) -> None:
        raise NotImplementedError

    async def add_likes(self, room_id: str, n: int) -> None:
        raise NotImplementedError

    async def post_chat(
        self, room_id: str, sender: Principal | None, text: str, request_id: str | None = None
    ) -> Rejection | Duplicate | str:
        """Admit and post a chat message; returns its message id or why it was not posted."""
        room = self._room(room_id)
        verdict = room.chat.admit(sender, text, request_id, self._clock())
        if not isinstance(verdict, str):
            return verdict
        assert sender is not None
        message_id = f"m{self.instance_id}{next(self._ids)}"
        room.chat.remember_accepted(sender.user_id, request_id, message_id)
        message = {
            "id": message_id,
            "user_id": sender.user_id,
            "role": str(sender.role),
            "text": verdict,
            "ts": now_ms(),
        }
        await self._send(room_id, "chat", message)
        return message_id

    async def delete_chat(self, room_id: str, actor: Principal | None, message_id: str) -> None:
        _require_staff(actor)
        assert actor is not None
        await self._send(room_id, "chat.delete", {"message_id": message_id, "by": actor.user_id})

    async def mute_user(
        self, room_id: str, actor: Principal | None, user_id: str, duration_s: float | None = None
    ) -> None:
        _require_staff(actor)
        until = None if duration_s is None else time.time() * 1000 + duration_s * 1000
        await self._send(room_id, "mute", {"user_id": user_id, "until_ms": until})

    async def unmute_user(self, room_id: str, actor: Principal | None, user_id: str) -> None:
        _require_staff(actor)
        await self._send(room_id, "unmute", {"user_id": user_id})

    async def update_banned_words(
        self,
        room_id: str,
        actor: Principal | None,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> None:
        _require_staff(actor)
        await self._send(room_id, "banned_words", {"add": list(add), "remove": list(remove)})

    async def handle_request(self, conn: Connection, request: ClientRequest) -> None:
        """Serve one decoded client request; replies go through the connection's outbox."""
        rid = request.id
        reply: str | None
        try:
            if isinstance(request, ChatSendRequest):
                outcome = await self.post_chat(conn.room_id, conn.principal, request.text, rid)
                reply = _chat_reply(outcome, rid)
            elif isinstance(request, LikeRequest):
                reply = await self._like(conn, request)
            elif isinstance(request, DeleteMessageRequest):
                await self.delete_chat(conn.room_id, conn.principal, request.message_id)
                reply = control_message("ack", id=rid)
            elif isinstance(request, MuteRequest):
                actor = conn.principal
                await self.mute_user(conn.room_id, actor, request.user_id, request.duration_s)
                reply = control_message("ack", id=rid)
            elif isinstance(request, UnmuteRequest):
                await self.unmute_user(conn.room_id, conn.principal, request.user_id)
                reply = control_message("ack", id=rid)
            elif isinstance(request, BannedWordsRequest):
                actor = conn.principal
                await self.update_banned_words(conn.room_id, actor, request.add, request.remove)
                reply = control_message("ack", id=rid)
            elif isinstance(request, PingRequest):
                reply = control_message("pong", id=rid, server_time=now_ms())
            else:
                reply = error_message("bad_request", f"unsupported request {type(request)}", rid)
        except PermissionDenied as exc:
            reply = error_message("forbidden", str(exc), rid)
        if reply is not None:
            conn.send(reply)

    async def _like(self, conn: Connection, request: LikeRequest) -> str | None:
        """Likes are aggregated into the room counter; acked only when refused."""
        cfg = self.config
        now = self._clock()
        bucket = self._like_buckets.get(conn.conn_id)
        if bucket is None:
            bucket = self._like_buckets[conn.conn_id] = TokenBucket(
                cfg.like_rate, cfg.like_burst, now
            )
        wait = bucket.try_take(now)
        if wait:
            return rate_limited_message("likes", wait, request.id)
        await self.add_likes(conn.room_id, max(1, min(request.n, cfg.max_likes_per_request)))
        return None


def _chat_reply(outcome: Rejection | Duplicate | str, request_id: str | None) -> str:
    if isinstance(outcome, str):
        return control_message("ack", id=request_id, data={"message_id": outcome})
    if isinstance(outcome, Duplicate):
        return control_message(
            "ack", id=request_id, data={"message_id": outcome.message_id, "duplicate": True}
        )
    if outcome.code == "rate_limited":
        return rate_limited_message(outcome.scope, outcome.retry_after_s, request_id)
    return error_message(outcome.code, outcome.message, request_id)
