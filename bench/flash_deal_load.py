"""Open-loop load generator for `redcart bench flash-deal`, run as its own process.

`python -m bench.flash_deal_load CONFIG.json` prints `{"ready": true}`, waits for a line
`go <start>` on stdin (a time.monotonic() value, which is system-wide on Linux), then sends
claims on a fixed schedule: attempt k of generator g of G is due at
start + (k·G + g) / rate, whatever the server is doing (open loop). Each attempt takes an idle
keep-alive connection or opens one; its latency runs from its *scheduled* time, so a server (or
generator) falling behind shows up in the latency instead of silently lowering the load
(no coordinated omission). Answers are framed by bench.httpload's minimal HTTP/1.1 client.

The schedule runs the phases back to back (a warm-up deal, a pause with nothing sent, then the
measured deal); per attempt of a recorded phase it writes [status, due ms, latency ms, send lag
ms, code] to the output file (status 0: an error: timeout, connection lost, protocol), and
progress lines to stdout.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from bench.httpload import ProtocolError, _Connection, _expire


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _code(status: int, body: bytes) -> str:
    """The problem type of an error answer ("out_of_stock", "conflict", ...), else ""."""
    if status < 400:
        return ""
    at = body.find(b"/problems/")
    if at < 0:
        return body[:80].decode(errors="replace")
    end = body.find(b'"', at)
    return body[at + 10 : end].decode(errors="replace")


async def _run(cfg: dict[str, Any], start: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port, timeout = cfg["host"], cfg["port"], cfg["timeout"]
    g, gens, rate = cfg["index"], cfg["generators"], cfg["rate"]
    rng = random.Random(cfg["seed"])
    heads, bodies = [], []
    for token, resident_id in cfg["buyers"]:
        body = {"identity": {"name": cfg["name"], "resident_id": resident_id}}
        body["address"] = cfg["address"]
        raw = json.dumps(body, ensure_ascii=False).encode()
        bodies.append(raw)
        heads.append(
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n" % (token.encode(), len(raw))
        )
    phases = []  # (ends at, request line and fixed headers, name, recorded, begins at)
    at = start
    for phase in cfg["phases"]:
        line = (
            None
            if phase["deal_id"] is None
            else (
                f"POST /live/deals/{phase['deal_id']}/claims HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\n"
            ).encode()
        )
        phases.append((at + phase["seconds"], line, phase["name"], phase["record"], at))
        at += phase["seconds"]
    end = at

    idle: list[_Connection] = []
    waiters: deque[asyncio.Future] = deque()  # attempts waiting for a connection (at the cap)
    counts = {"opened": 0, "open": 0, "in_flight": 0, "max_in_flight": 0, "sent": 0, "done": 0}
    counts["waited"] = 0
    summaries: dict[str, Counter] = {p[2]: Counter() for p in phases}
    rows: dict[str, list] = {p[2]: [] for p in phases if p[3]}

    async def connect() -> _Connection:
        counts["opened"] += 1
        _, proto = await loop.create_connection(lambda: _Connection(loop), host, port)
        return proto

    async def connection() -> _Connection:
        while True:
            while idle:
                conn = idle.pop()  # LIFO: hot connections first; cold ones may have timed out
                if not conn.lost:
                    return conn
                counts["open"] -= 1
            if counts["open"] < cfg["max_connections"]:
                counts["open"] += 1
                try:
                    return await connect()
                except BaseException:
                    counts["open"] -= 1
                    raise
            counts["waited"] += 1
            waiter = loop.create_future()
            waiters.append(waiter)
            await waiter

    def release(conn: _Connection) -> None:
        if conn.lost or conn.must_close:
            conn.close()
            counts["open"] -= 1
        else:
            idle.append(conn)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def attempt(k: int, due: float, phase: tuple) -> None:
        buyer = rng.randrange(len(bodies))
        raw = b"%s%sIdempotency-Key: fd-%d-%d\r\n\r\n%s" % (
            phase[1], heads[buyer], g, k, bodies[buyer]
        )  # fmt: skip
        counts["in_flight"] += 1
        counts["max_in_flight"] = max(counts["max_in_flight"], counts["in_flight"])
        status, code, sent = 0, "", due
        conn = None
        # No answer `timeout` seconds after the due time (connection wait included): an error.
        try:
            while idle and conn is None:  # the usual case: no task, no timer for the wait
                conn = idle.pop()
                if conn.lost:
                    conn, counts["open"] = None, counts["open"] - 1
            if conn is None:
                left = due + timeout - time.monotonic()
                conn = await asyncio.wait_for(connection(), max(0.001, left))
            sent = time.monotonic()
            fut = conn.request(raw)
            timer = loop.call_later(max(0.001, due + timeout - sent), _expire, fut)
            try:
                status, body = await fut
            finally:
                timer.cancel()
            code = _code(status, body)
        except (TimeoutError, ConnectionError, ProtocolError, OSError, ValueError) as exc:
            # unsent: no connection in time (all busy at the cap, or connecting failed)
            code = type(exc).__name__ if conn is not None else f"unsent: {type(exc).__name__}"
            if conn is not None:
                conn.close()
        if conn is not None:
            release(conn)
        finished = time.monotonic()
        counts["in_flight"] -= 1
        counts["done"] += 1
        summaries[phase[2]][f"{status} {code}".strip()] += 1
        if phase[3]:
            begins = phase[4]
            rows[phase[2]].append(
                [
                    status,
                    round((due - begins) * 1000.0, 3),
                    round((finished - due) * 1000.0, 3),
                    round((sent - due) * 1000.0, 3),
                    code,
                ]
            )

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            _emit({"progress": {"t": round(time.monotonic() - start, 2), **counts}})

    # Pre-open connections, then wait for the start.
    pre = await asyncio.gather(
        *(asyncio.wait_for(connect(), timeout) for _ in range(cfg["prewarm"])),
        return_exceptions=True,
    )
    idle.extend(c for c in pre if isinstance(c, _Connection))
    counts["open"] = len(idle)
    late_start = max(0.0, time.monotonic() - start)
    while (wait := start - time.monotonic()) > 0:
        await asyncio.sleep(wait)
    reporter = asyncio.create_task(report())
    cpu0 = sum(os.times()[:2])
    tasks: set[asyncio.Task] = set()
    k = 0
    phase_i = 0
    while True:
        due = start + (k * gens + g) / rate
        if due >= end:
            break
        while due >= phases[phase_i][0]:
            phase_i += 1
        if phases[phase_i][1] is None:  # a pause: nothing is sent until it ends
            k = max(k + 1, math.ceil(((phases[phase_i][0] - start) * rate - g) / gens))
            continue
        now = time.monotonic()
        if due > now:
            # uvloop's timers tick in whole milliseconds: a shorter sleep would spin the loop.
            # Whatever fell due meanwhile goes out together (latency still counts from `due`).
            await asyncio.sleep(max(0.001, due - now))
            continue
        counts["sent"] += 1
        task = asyncio.create_task(attempt(k, due, phases[phase_i]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.wait(tasks)
    reporter.cancel()
    for conn in idle:
        conn.close()
    return {
        "index": g,
        "rows": rows,
        "summaries": {name: dict(c) for name, c in summaries.items()},
        "connections_opened": counts["opened"],
        "max_in_flight": counts["max_in_flight"],
        "waited_for_connection": counts["waited"],
        "sent": counts["sent"],
        "late_start_ms": round(late_start * 1000.0, 1),
        "cpu_s": round(sum(os.times()[:2]) - cpu0, 3),
    }


def main(argv: list[str]) -> int:
    import uvloop

    cfg = json.loads(Path(argv[1]).read_text())
    _emit({"ready": True})
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "go":
        return 2
    result = uvloop.run(_run(cfg, float(line[1])))
    Path(cfg["out"]).write_text(json.dumps(result))
    _emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
