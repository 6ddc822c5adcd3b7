"""Blue/green rebuilds of read models, and where every projection stands.

A generational view's tables and tracking rows carry a generation suffix (`pp_pages_g2`,
`product_page_g2`). One row per view in `projection_generations` says which generation reads
use (`active`) and which one a rebuild is filling (`building`). A rebuild:

1. claims generation N+1 (or resumes it: its tables and tracking rows only ever move together,
   so a crashed rebuild picks up where it stopped, or starts over with `restart=True`);
2. catches it up from position 0 in batches of `batch_size`, each batch one transaction with
   its tracking row (research/eventsourcing.md §5.5), while generation N keeps serving and
   keeps being updated by the live runners;
3. once a pass leaves less than one batch to do, flips `active` to N+1 in one statement, and
   catches up once more. Live runners (`FollowingRunner`) notice the flip on their next pass
   and continue N+1 from its tracking row; readers pick it up within `ActiveGenerations.ttl`;
4. after `grace_seconds` (longer than both), drops generation N's tables and tracking rows.

Why not SQL views over the generation's tables: SQLite's FTS5 `MATCH` and `bm25()` need the
virtual table itself, so search could not be switched that way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application

from projections import runner
from projections.batching import BatchRunner, FollowingBatchRunner
from projections.burst import hold_for
from projections.registry import VIEWS, Generation, ReadConfig, View
from projections.sqlstore import SqlStore

log = logging.getLogger(__name__)

POINTER_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_generations (view TEXT PRIMARY KEY,"
    " active INTEGER NOT NULL, building INTEGER)"
)
GRACE_SECONDS = 3.0
LAG_COUNT_MAX = 10_000  # `projections status` reads at most this many notifications per feed
Progress = Callable[[int, int], None]  # (events done, events to do)


def projections(view: View, number: int, dialect: str, config: ReadConfig) -> list:
    gen = Generation(number, dialect, config)
    return [(feed, feed.build(gen)) for feed in view.feeds]


def migrate_views(store: SqlStore, config: ReadConfig, views: Iterable[View] = VIEWS) -> list[str]:
    """Create every view's tables for its active generation (1 the first time)."""
    with store.transaction() as cur:
        cur.execute(POINTER_DDL)
        cur.execute(runner.TRACKING_DDL)
    done = []
    for view in views:
        number = 0
        if view.generational:
            with store.transaction() as cur:
                cur.execute(
                    "INSERT INTO projection_generations (view, active) VALUES (%s, 1)"
                    " ON CONFLICT (view) DO NOTHING",
                    (view.name,),
                )
            number = active_generation(store, view.name)
        for _, projection in projections(view, number, store.dialect, config):
            runner.migrate(store, projection)
        done.append(view.name if not number else f"{view.name} (generation {number})")
    return done


def active_generation(store: SqlStore, view: str) -> int:
    rows = store.query("SELECT active FROM projection_generations WHERE view = %s", (view,))
    if not rows:
        raise LookupError(f"read model {view!r} has no tables yet: run `redcart migrate`")
    return int(rows[0][0])


class ActiveGenerations:
    """Which generation each view reads, cached per process for `ttl` seconds: a page read
    stays one statement, and a switch reaches every reader within `ttl`."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, int]] = {}

    def cached(self, view: str) -> int | None:
        hit = self._cache.get(view)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def remember(self, view: str, number: int) -> int:
        self._cache[view] = (time.monotonic() + self.ttl, number)
        return number

    def forget(self) -> None:
        self._cache.clear()


def drop_generation(store: SqlStore, view: View, number: int, config: ReadConfig) -> None:
    with store.transaction() as cur:
        for _, projection in projections(view, number, store.dialect, config):
            for table in projection.tables:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute("DELETE FROM projection_tracking WHERE name = %s", (projection.name,))


def _claim(store: SqlStore, view: View, config: ReadConfig, restart: bool) -> tuple[int, int]:
    lock = " FOR UPDATE" if store.dialect == "postgres" else ""
    with store.transaction() as cur:
        cur.execute(
            f"SELECT active, building FROM projection_generations WHERE view = %s{lock}",  # noqa: S608
            (view.name,),
        )
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"read model {view.name!r} has no tables yet: run `redcart migrate`")
        active, building = int(row[0]), row[1]
        fresh = building is None or restart
        building = active + 1 if building is None else int(building)
        cur.execute(
            "UPDATE projection_generations SET building = %s WHERE view = %s",
            (building, view.name),
        )
    if fresh:  # leftovers of an abandoned attempt under this number must not be resumed
        drop_generation(store, view, building, config)
    return active, building


def rebuild(
    store: SqlStore,
    apps: Mapping[str, Application],
    view: View,
    config: ReadConfig,
    *,
    progress: Progress | None = None,
    restart: bool = False,
    grace_seconds: float = GRACE_SECONDS,
) -> dict[str, Any]:
    """Build generation N+1 of `view` from the logs, switch reads to it, drop N."""
    if not view.generational:
        raise ValueError(f"{view.name} keeps fixed table names and cannot be rebuilt blue/green")
    started = time.monotonic()
    old, new = _claim(store, view, config, restart)
    runners = []
    for feed, projection in projections(view, new, store.dialect, config):
        runner.migrate(store, projection)
        runners.append(
            BatchRunner(apps[feed.source], store, projection, batch_size=config.batch_size)
        )
    positions = {id(r): r.position for r in runners}

    def report(r: runner.ProjectionRunner, position: int) -> None:
        positions[id(r)] = position
        if progress is not None:
            heads = sum(x.app.recorder.max_notification_id() or 0 for x in runners)
            progress(min(sum(positions.values()), heads), heads)

    if progress is not None:
        progress(sum(positions.values()), sum(r.app.recorder.max_notification_id() or 0
                                              for r in runners))  # fmt: skip
    applied, total = config.batch_size + 1, 0
    while applied > config.batch_size:  # until a pass leaves less than a batch behind
        applied = sum(r.catch_up(on_batch=lambda p, r=r: report(r, p)) for r in runners)
        total += applied
    with store.transaction() as cur:
        cur.execute(
            "UPDATE projection_generations SET active = %s, building = NULL"
            " WHERE view = %s AND active = %s",
            (new, view.name, old),
        )
    total += sum(r.catch_up(on_batch=lambda p, r=r: report(r, p)) for r in runners)
    built = time.monotonic() - started
    log.info("%s: generation %s serves reads; dropping %s", view.name, new, old)
    time.sleep(grace_seconds)
    drop_generation(store, view, old, config)
    return {
        "view": view.name,
        "from_generation": old,
        "generation": new,
        "events_applied": total,
        # until reads switched: the rebuild's own rate, without the grace readers of the old
        # generation get before its tables are dropped
        "build_seconds": round(built, 3),
        "events_per_s": round(total / built) if built > 0 else None,
        "seconds": round(time.monotonic() - started, 3),
    }


def status(
    store: SqlStore,
    apps: Mapping[str, Application],
    config: ReadConfig,
    views: Iterable[View] = VIEWS,
) -> list[dict[str, Any]]:
    """Each feed of each view: generation, tracking position, head of its log, and lag.

    `lag_events` counts the events of the feed's topics it still has to apply (up to
    `LAG_COUNT_MAX`; more shows as that), `behind_log` the log entries between its position and
    the head, whatever their topic; `lag_seconds` is the age of the oldest event still to apply."""
    pointers = {
        row[0]: (int(row[1]), row[2])
        for row in store.query("SELECT view, active, building FROM projection_generations")
    }
    tracked = {
        row[0]: int(row[1]) for row in store.query("SELECT name, position FROM projection_tracking")
    }
    heads = {name: app.recorder.max_notification_id() or 0 for name, app in apps.items()}
    rows = []
    for view in views:
        active, building = pointers.get(view.name, (0, None))
        numbers = [("active", active)] if view.generational else [("fixed", 0)]
        if view.generational and building is not None:
            numbers.append(("building", int(building)))
        for state, number in numbers:
            for feed, projection in projections(view, number, store.dialect, config):
                head, position = heads.get(feed.source, 0), tracked.get(projection.name)
                lag = _lag(apps.get(feed.source), projection, position, head)
                rows.append(
                    {
                        "view": view.name,
                        "projection": projection.name,
                        "source": feed.source,
                        "generation": number if view.generational else None,
                        "state": state if position is not None else "not migrated",
                        "position": position,
                        "head": head,
                        "lag_events": lag[0],
                        "behind_log": None if position is None else max(0, head - position),
                        "lag_seconds": lag[1],
                    }
                )
    return rows


def _lag(
    app: Application | None, projection: Any, position: int | None, head: int
) -> tuple[int | None, float | None]:
    """(events of the projection's topics after `position`, age in seconds of the first)."""
    if app is None or position is None:
        return None, None
    if position >= head:
        return 0, 0.0
    notes = app.recorder.select_notifications(
        position, LAG_COUNT_MAX, stop=head, topics=projection.topics, inclusive_of_start=False
    )
    if not notes:
        return 0, 0.0
    at = app.mapper.to_domain_event(notes[0]).timestamp
    return len(notes), round(max(0.0, (datetime.now(UTC) - at).total_seconds()), 3)


def runners_for(
    views: Iterable[View],
    store: SqlStore,
    apps: Mapping[str, Application],
    config: ReadConfig,
    poll_interval: float,
    hold_longest: float = 0.0,
    min_interval: float = 0.0,
) -> list[runner.ProjectionRunner]:
    """Live runners for these views' feeds: generational ones follow rebuilds' switches. With
    `hold_longest`, each waits out its log's bursts for up to that long (projections.burst)."""
    made: list[runner.ProjectionRunner] = []
    for view in views:
        for feed in view.feeds:
            options = {"batch_size": config.batch_size, "poll_interval": poll_interval,
                       "hold": hold_for(hold_longest), "min_interval": min_interval}  # fmt: skip
            if not view.generational:
                projection = feed.build(Generation(0, store.dialect, config))
                made.append(BatchRunner(apps[feed.source], store, projection, **options))
                continue
            made.append(
                FollowingBatchRunner(
                    apps[feed.source],
                    store,
                    active=lambda name=view.name: active_generation(store, name),
                    build=lambda n, f=feed: f.build(Generation(n, store.dialect, config)),
                    **options,
                )
            )
    return made
