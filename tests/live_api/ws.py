"""Reading a room socket in tests: frames carry one or more JSON messages, one per line."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection


async def next_message(
    ws: ClientConnection, buffer: list[dict[str, Any]], *types: str, timeout: float = 10
) -> dict[str, Any]:
    """The next message of one of `types`, skipping others; `buffer` keeps what a frame
    brought beyond it for the next call."""
    while True:
        while buffer:
            message = buffer.pop(0)
            if message["type"] in types:
                return message
        frame = await asyncio.wait_for(ws.recv(), timeout)
        buffer.extend(json.loads(line) for line in str(frame).split("\n"))
