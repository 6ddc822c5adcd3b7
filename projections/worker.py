"""`redcart worker projections`: keep read models current from a process of their own.

Why a separate process on PostgreSQL: decoding events and writing views took ~40% of the API
process's GIL time under order load. Here the runner is woken by the events table's NOTIFY
(eventsourcing issues one per save) and otherwise polls; it survives store outages by starting
over from its tracked position, which is also what a restart by the supervisor does.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from projections.runner import ProjectionRunner

log = logging.getLogger(__name__)


def listen_for_commits(
    database_url: str, channel: str, wake: Callable[[], None], stop: threading.Event
) -> None:
    """Call `wake` whenever PostgreSQL announces a commit on `channel`; reconnect on failure."""
    import psycopg

    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f'LISTEN "{channel}"')
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        wake()
        except Exception:
            log.exception("LISTEN %s failed; reconnecting", channel)
            stop.wait(1.0)


def run_forever(
    runners: list[ProjectionRunner],
    database_url: str | None,
    channel: str,
    on_stop: Callable[[], None] = lambda: None,
) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for runner in runners:
        runner.start()
    if database_url:
        threading.Thread(
            target=listen_for_commits,
            args=(database_url, channel, lambda: [r.wake() for r in runners], stop),
            name="listen",
            daemon=True,
        ).start()
    log.info("projection worker running: %s", ", ".join(r.projection.name for r in runners))
    try:
        while not stop.wait(5.0):
            for runner in runners:
                log.debug("%s at %s", runner.projection.name, runner.position)
    finally:
        for runner in runners:
            runner.stop()
        on_stop()
        time.sleep(0)
