"""A long catch-up on PostgreSQL decides batch N+1 while batch N is written
(projections.pipeline): the tables are the same as one event per transaction gives, and a
commit that fails mid-pass leaves nothing half-applied; the next pass finishes the job."""

from __future__ import annotations

import random

import pytest

from bench.projections import Log
from projections import pipeline
from projections.attribution_view import AttributionView
from projections.dashboards import LiveAnalytics, MerchantDashboard
from tests.projections_attribution.test_dashboards import Gen, dump
from tests.projections_attribution.world import World

pytestmark = pytest.mark.postgres


@pytest.fixture
def store_url(postgres_url: str) -> str:
    """PostgreSQL only: on SQLite a catch-up takes the plain path (projections.pipeline)."""
    return postgres_url


@pytest.fixture
def pg_world(world: World) -> World:
    Log(world.commerce, world.live, random.Random(5)).write(2_000)
    return world


def views(number: int, cached: bool = True) -> list:
    """The three row-cached views; `cached=False` makes them read every row from their tables,
    batch after batch: the independent reference."""
    gen = Gen(number)
    made = [AttributionView(gen), MerchantDashboard(gen), LiveAnalytics(gen)]
    for view in made:
        view.row_cache = view.row_cache if cached else None
    return made


def project_all(world: World, made: list, **kw) -> list:  # type: ignore[no-untyped-def]
    for view in made:
        app = world.live if isinstance(view, LiveAnalytics) else world.commerce
        world.project(view, app=app, **kw)
    return [dump(world, v) for v in made]


def test_pipelined_batches_give_the_tables_one_event_at_a_time_gives(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = project_all(pg_world, views(1, cached=False), batch=1)
    commits = []
    real = pipeline._commit
    monkeypatch.setattr(pipeline, "_commit", lambda *a: commits.append(a[3]) or real(*a))
    assert project_all(pg_world, views(2), fast=True, batch=7) == reference
    assert len(commits) > 100  # the pipelined path ran, batch after batch
    assert reference[0]["attr_orders"] and reference[0]["attr_commissions"]


def test_a_commit_failing_mid_pass_applies_nothing_twice_and_the_next_pass_finishes(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = project_all(pg_world, views(3, cached=False), batch=1)
    made = views(4)
    real, calls = pipeline._commit, []

    def flaky(*args):  # type: ignore[no-untyped-def]
        calls.append(args[3])
        if len(calls) == 20:
            raise ConnectionError("the database went away mid-commit")
        return real(*args)

    monkeypatch.setattr(pipeline, "_commit", flaky)
    with pytest.raises(ConnectionError):
        pg_world.project(made[0], fast=True, batch=7)
    assert made[0].row_cache.tables == {}  # what it decided ahead is forgotten
    runner = pg_world.project(made[0], fast=True, batch=7)  # the next pass, same projection
    assert runner.position > calls[18]
    assert project_all(pg_world, made, fast=True, batch=7) == reference
