"""The owner's end of livestream.engine.channel: deal commands other API processes forward.

Each frame is answered in its own task, so forwarded claims join the deal's writer batches
like the owner's own; answers go back in whatever order they are decided, matched by number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.status_codes import WS_1008_POLICY_VIOLATION

from livestream.api.runtime import Live
from livestream.engine.channel import CHANNEL_PATH
from livestream.engine.router import AUTH_HEADER, DealEngine

log = logging.getLogger("redcart.livestream.deals")
_encode = msgspec.json.Encoder().encode
_Command = tuple[int, UUID, str, dict[str, Any]]
_decode = msgspec.json.Decoder(_Command).decode
BAD_FRAME = 1007  # RFC 6455: data inconsistent with the message's type


@websocket(CHANNEL_PATH, name="forwarded_deal_commands")
async def forwarded_deal_commands(socket: WebSocket, live: Live) -> None:
    engine = live.engine
    if not engine.verify_handshake(socket.headers.get(AUTH_HEADER)):
        await socket.close(code=WS_1008_POLICY_VIOLATION)  # before accepting: a 403 handshake
        return
    await socket.accept()
    answering: set[asyncio.Task] = set()
    while True:
        try:
            message = await socket.receive()
        except WebSocketDisconnect:
            break
        if message["type"] == "websocket.disconnect":
            break
        try:
            number, deal_id, op, args = _decode(message.get("bytes") or message.get("text") or b"")
        except msgspec.DecodeError:
            await socket.close(code=BAD_FRAME, reason="not a deal command")
            break
        task = asyncio.create_task(_answer(socket, engine, number, deal_id, op, args))
        answering.add(task)
        task.add_done_callback(answering.discard)
    # Commands already begun finish (the caller will ask again and must find them decided).
    await asyncio.gather(*answering, return_exceptions=True)


async def _answer(
    socket: WebSocket, engine: DealEngine, number: int, deal_id: UUID, op: str, args: dict
) -> None:
    try:
        status, payload = await engine.serve_forwarded(deal_id, op, args)
    except Exception:
        log.exception("a forwarded %s on deal %s failed", op, deal_id)
        status, payload = 500, {"error": {"code": "internal", "detail": "the owner failed"}}
    with contextlib.suppress(Exception):  # the caller left: it asks again, here or elsewhere
        await socket.send_data(_encode([number, status, payload]), mode="binary")
