"""`redcart worker projections`: keep read models current from processes of their own.

Why a separate process on PostgreSQL: decoding events and writing views took ~40% of the API
process's GIL time under order load. Here the runner is woken by the events table's NOTIFY
(eventsourcing issues one per save) and otherwise polls; it survives store outages by starting
over from its tracked position, which is also what a restart by the supervisor does.

`supervise` runs one process per read model and restarts any that exits (DESIGN.md decision
4), so one projection's crash or slow rebuild never holds up the others.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from projections.runner import ProjectionRunner

log = logging.getLogger(__name__)


def listen_for_commits(
    database_url: str,
    channel: str | Sequence[str],
    wake: Callable[[str], None],
    stop: threading.Event,
) -> None:
    """Call `wake(channel)` whenever PostgreSQL announces a commit on `channel` (one connection
    for all channels); reconnect on failure."""
    import psycopg

    channels = [channel] if isinstance(channel, str) else list(channel)
    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for name in channels:
                    conn.execute(f'LISTEN "{name}"')
                while not stop.is_set():
                    for note in conn.notifies(timeout=1.0, stop_after=1):
                        wake(note.channel)
        except Exception:
            log.exception("LISTEN %s failed; reconnecting", ", ".join(channels))
            stop.wait(1.0)


def waking_by_channel(
    channels: Mapping[str, Sequence[ProjectionRunner]],
) -> Callable[[str], None]:
    """Wake only the runners that read the log a commit was announced on. Why: in a flash
    sale the deal's writer commits on the Livestream log a hundred times a second, and the
    commerce views woken by each would look for nothing (~5 queries a look)."""

    def wake(channel: str) -> None:
        for runner in channels.get(channel, ()):
            runner.wake()

    return wake


def run_forever(
    runners: list[ProjectionRunner],
    database_url: str | None,
    channels: Mapping[str, Sequence[ProjectionRunner]],
    on_stop: Callable[[], None] = lambda: None,
) -> None:
    """Run `runners` until SIGTERM, each woken by NOTIFY on the channel of the log it reads
    (`channels`: channel → its runners)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for runner in runners:
        runner.start()
    if database_url:
        threading.Thread(
            target=listen_for_commits,
            args=(database_url, list(channels), waking_by_channel(channels), stop),
            name="listen",
            daemon=True,
        ).start()
    log.info("projection worker running: %s", ", ".join(r.projection.name for r in runners))
    try:
        while not stop.wait(5.0):
            for runner in runners:
                held = runner.hold.held_s if runner.hold is not None else 0.0
                log.debug("%s at %s, %.1fs held in bursts", runner.projection.name,
                          runner.position, held)  # fmt: skip
    finally:
        for runner in runners:
            runner.stop()
        on_stop()
        time.sleep(0)


def supervise(children: Mapping[str, Callable[[], None]], *, max_backoff: float = 30.0) -> None:
    """Run each child in a process of its own and restart it whenever it exits, until SIGTERM.

    Children are forked from this process after it has imported everything, so a restart is
    ready in milliseconds (a crashed projection resumes from its tracking row; nothing is lost
    or applied twice). A child that keeps dying is restarted with doubling delays up to
    `max_backoff`. Children are told to die with the supervisor (PR_SET_PDEATHSIG), so a
    killed supervisor never leaves orphans behind.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    procs: dict[str, Any] = {}
    started: dict[str, float] = {}
    due: dict[str, float] = dict.fromkeys(children, 0.0)
    delay: dict[str, float] = dict.fromkeys(children, 1.0)
    try:
        while not stop.is_set():
            now = time.monotonic()
            for name, target in children.items():
                proc = procs.get(name)
                if proc is not None and not proc.is_alive():
                    up = now - started[name]
                    delay[name] = 1.0 if up > 60 else min(delay[name] * 2, max_backoff)
                    log.warning("projection worker %s exited (code %s) after %.1fs; restarting"
                                " in %.0fs", name, proc.exitcode, up, delay[name])  # fmt: skip
                    due[name], procs[name] = now + delay[name], None
                if procs.get(name) is None and due[name] <= now:
                    proc = ctx.Process(target=_child, args=(target,), name=f"projections-{name}")
                    proc.start()
                    procs[name], started[name] = proc, now
            stop.wait(0.2)
    finally:
        alive = [p for p in procs.values() if p is not None and p.is_alive()]
        for proc in alive:
            proc.terminate()
        for proc in alive:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()


def _child(target: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):  # Linux only; elsewhere a supervisor kill orphans us
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    target()
