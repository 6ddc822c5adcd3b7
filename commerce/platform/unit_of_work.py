"""What one command sees inside the group-commit writer: the writer's cached aggregates, and
the ones it creates or changes (so the writer knows what to save, and what to throw away when a
command fails half-way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

if TYPE_CHECKING:
    from commerce.platform.groupcommit import GroupCommitWriter

T = TypeVar("T")


class UnitOfWork:
    """What one command sees: cached aggregates, and the ones it creates or changes."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self._writer = writer
        self.seen: dict[UUID, Aggregate] = {}
        self._pending_before: dict[UUID, int] = {}

    def get(self, aggregate_id: UUID, kind: type[T] | None = None) -> T | None:
        aggregate = self._writer._load(aggregate_id)
        if aggregate is None:
            return None
        if kind is not None and not isinstance(aggregate, kind):
            return None
        self._track(aggregate)
        return aggregate  # type: ignore[return-value]

    def original(self, aggregate_id: UUID, version: int = 1) -> Aggregate | None:
        """An aggregate as it was at `version`, read from the store (rare: replays)."""
        try:
            return self._writer.app.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            return None

    def add(self, aggregate: Aggregate) -> Aggregate:
        self._writer._cache_put(aggregate)
        self._pending_before[aggregate.id] = 0
        self.seen[aggregate.id] = aggregate
        return aggregate

    def _track(self, aggregate: Aggregate) -> None:
        if aggregate.id not in self.seen:
            self.seen[aggregate.id] = aggregate
            self._pending_before[aggregate.id] = len(aggregate.pending_events)

    def changed(self) -> dict[UUID, Aggregate]:
        return {
            aid: agg
            for aid, agg in self.seen.items()
            if len(agg.pending_events) > self._pending_before[aid]
        }
