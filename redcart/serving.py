"""The HTTP servers `redcart serve` can run the app on, and the one place their options are set.

Two servers, because the two hot paths want different things:

- **uvicorn** (the default): the live rooms' fan-out writes each prebuilt frame straight to the
  transport of uvicorn's websockets-sansio protocol (livestream/room/routes.py), which keeps
  5,000 viewers in a room at ~0.44 of a core (BENCHMARKS.md, fanout); its HTTP goes through
  redcart.http_protocol (a response's head and body in one write).
- **granian**: HTTP parsing and socket I/O in Rust threads, outside the GIL. In a flash sale
  the API process's one core is the queue, and most of a claim's cost there was uvicorn's
  protocol and asyncio, not redcart's code; in 16 alternating pairs the same sale shed fewer
  claims on granian in 12 (none on either in the other 4), with a lower p99 in 12
  (BENCHMARKS.md, stop 22); that needs a core free for its Rust threads (on one core uvicorn
  did better, stop 23). Rooms work on it too, but each frame goes through ASGI `send`: in four
  fanout runs the same 5,000 viewers cost it 2–2.4× uvicorn's CPU.

A sale-heavy deployment can run its API tier on granian and its room tier on uvicorn, both
the same app on the same PostgreSQL (deals and rooms already cross processes there).
"""

from __future__ import annotations

SERVERS = ("uvicorn", "granian")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")  # both servers know these
APP = "redcart.asgi:app"
BACKLOG = 2048  # connections waiting to be accepted (uvicorn's default; granian's is 1024)


def run(
    server: str,
    host: str,
    port: int,
    workers: int = 1,
    app: str = APP,
    factory: bool = False,
    log_level: str = "info",
) -> None:
    """Serve `app` (an import string; `factory`: a function that builds it) until stopped."""
    if server == "granian":
        _run_granian(host, port, workers, app, factory, log_level)
    elif server == "uvicorn":
        _run_uvicorn(host, port, workers, app, factory, log_level)
    else:
        raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")


def _run_uvicorn(
    host: str, port: int, workers: int, app: str, factory: bool, log_level: str
) -> None:
    import uvicorn

    from redcart.http_protocol import HTTP_PROTOCOL, KEEP_ALIVE_SECONDS

    uvicorn.run(
        app,
        factory=factory,
        host=host,
        port=port,
        workers=workers,
        backlog=BACKLOG,
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, with head and body in one write
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # the room hub writes prebuilt frames straight to this transport (livestream/room/
        # routes.py); per-message deflate would cost more CPU per viewer than it saves
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level=log_level,
        access_log=False,
    )


def _run_granian(
    host: str, port: int, workers: int, app: str, factory: bool, log_level: str
) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        app,
        factory=factory,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,  # with lifespan: the app starts its writers and listeners
        http=HTTPModes.http1,  # as uvicorn: HTTP/1.1 (behind a proxy that may speak HTTP/2)
        loop=Loops.uvloop,
        backlog=BACKLOG,
        # as many requests at once as connections may wait: the app sheds claims itself
        # (a 503 with Retry-After past its cap on claims in flight), saying why
        backpressure=BACKLOG,
        websockets=True,
        log_level=LogLevels(log_level),
        log_access=False,
    ).serve()
