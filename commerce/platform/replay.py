"""Replaying and saving events without eventsourcing's per-event runtime Protocol checks.

Why: eventsourcing 9.5 checks every event it replays against a `runtime_checkable` Protocol
(`assert isinstance(event, CanMutateProtocol)` in `project_aggregate`), and every object it
saves (`isinstance(obj, DomainEventProtocol)` in `ProcessingEvent.collect_events`). On Python
3.11 such a check walks the protocol's attributes each time: 12 µs and 7.5 µs on the test
machine, against 2.6 µs for the event's own `mutate`. So every aggregate read cost about five
times what its mutations do; under cProfile, 0.44 s of the 0.72 s a process's first flash sale
spent reading its new buyers went there (BENCHMARKS.md, flash deal, stop 24). The events
replayed and saved here are eventsourcing's own `DomainEvent`s, made by the mapper or by an
aggregate's command, so the checks can tell nothing new; everything else (mutation,
snapshots, the cache) is the library's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing import application
from eventsourcing.application import (
    Application,
    ProcessingEvent,
    Recording,
    project_aggregate,
)
from eventsourcing.utils import strtobool


def mutate_all(aggregate: Any, events: Iterable[Any]) -> Any:
    """`project_aggregate` without its per-event Protocol check."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class Repository(application.Repository):
    """eventsourcing's repository, replaying with `mutate_all` unless told another projector."""

    def get(self, aggregate_id: Any, *, projector_func: Any = project_aggregate, **kw: Any) -> Any:
        if projector_func is project_aggregate:
            projector_func = mutate_all
        return super().get(aggregate_id, projector_func=projector_func, **kw)


class EventSourcedApplication(Application):
    """The base of each context's Application: eventsourcing's, with the repository above."""

    def construct_repository(self) -> Repository:
        """As `Application.construct_repository` (eventsourcing 9.5.6), with our class."""
        env = self.env
        cache_maxsize = env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return Repository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(cache_maxsize) if cache_maxsize else None,
            fastforward=strtobool(env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )


def save_events(app: Application, events: Sequence[Any]) -> list[Recording]:
    """`app.save(*events)` for events already collected from their aggregates, without a
    Protocol check per event. Nothing else of `save` applies to bare events: with no aggregate
    there is no snapshot to take or cache entry to put."""
    processing: ProcessingEvent = ProcessingEvent()
    processing.events.extend(events)
    recordings = app._record(processing)
    app._notify(recordings)
    return recordings
