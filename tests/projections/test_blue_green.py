"""Blue/green rebuilds: a new generation is built beside the live one, reads switch to it, the
live runner follows the switch, the old tables go, an interrupted rebuild resumes; and the CLI."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import rebuild
from projections.registry import ReadConfig, find
from projections.sqlstore import SqlStore
from redcart.cli import main
from redcart.wiring import migrate
from tests.conftest import ADMIN_KEY, SECRET_KEY
from tests.projections.world import World

CONFIG = ReadConfig(batch_size=5)
PAGE = find("product_page")


def populated() -> World:
    """A world with a few dozen events, made by the same generator as the property test."""
    worlds: list[World] = []

    @settings(max_examples=5, database=None, derandomize=True, deadline=None)
    @given(st.data())
    def make(data: st.DataObject) -> None:
        world = World()
        for _ in range(60):
            world.step(data)
        worlds.append(world)

    make()
    return max(worlds, key=lambda w: (len(w.products), w.commerce.recorder.max_notification_id()))


class Interrupted(Exception):
    pass


def tables(store: SqlStore) -> set[str]:
    return {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_rebuild_switches_reads_and_the_live_runner_follows(tmp_path: Path) -> None:
    world = populated()
    apps = {"Commerce": world.commerce, "Livestream": world.live}
    store = SqlStore.open(None, tmp_path)
    rebuild.migrate_views(store, CONFIG, [PAGE])
    runners = rebuild.runners_for([PAGE], store, apps, CONFIG, poll_interval=0.05)
    for r in runners:
        r.start()
    try:
        head = world.commerce.recorder.max_notification_id()
        assert all(r.wait_for(head if r.app is world.commerce else 0, 5) for r in runners)
        before = store.query("SELECT id, doc FROM pp_pages_g1 ORDER BY id")
        assert before
        seen: list[tuple[int, int]] = []
        progress = lambda done, total: seen.append((done, total))  # noqa: E731
        result = rebuild.rebuild(store, apps, PAGE, CONFIG, grace_seconds=0.3, progress=progress)
        assert (result["from_generation"], result["generation"]) == (1, 2)
        assert (
            seen
            and seen[-1][0] == seen[-1][1]
            and [d for d, _ in seen] == sorted(d for d, _ in seen)
        )
        assert rebuild.active_generation(store, "product_page") == 2
        assert store.query("SELECT id, doc FROM pp_pages_g2 ORDER BY id") == before
        assert not any(t.endswith("_g1") for t in tables(store))
        product = world.products[0]
        world.stocks[0].receive(7)  # a new event: the live runner must now write generation 2
        world.save(world.stocks[0])
        for r in runners:
            r.wake()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            row = store.query("SELECT doc FROM pp_pages_g2 WHERE id = %s", (str(product.id),))
            if row and row[0][0] != dict(before)[str(product.id)]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the live runner did not follow the switch")
        assert {r.generation for r in runners} == {2}
        rows = rebuild.status(store, apps, CONFIG, [PAGE])
        assert {(r["projection"], r["generation"], r["state"]) for r in rows} == {
            ("product_page_g2", 2, "active"),
            ("product_page_live_g2", 2, "active"),
        }
    finally:
        for r in runners:
            r.stop()
        store.close()


def test_an_interrupted_rebuild_resumes_where_it_stopped(tmp_path: Path) -> None:
    world = populated()
    apps = {"Commerce": world.commerce, "Livestream": world.live}
    store = SqlStore.open(None, tmp_path)
    rebuild.migrate_views(store, CONFIG, [PAGE])
    old, new = rebuild._claim(store, PAGE, CONFIG, restart=False)
    from projections import runner

    (_, projection), _ = rebuild.projections(PAGE, new, "sqlite", CONFIG)
    runner.migrate(store, projection)
    partial = runner.ProjectionRunner(world.commerce, store, projection, batch_size=5)

    def crash(position: int) -> None:
        raise Interrupted(position)

    with pytest.raises(Interrupted):  # the first batch committed, then the process "died"
        partial.catch_up(on_batch=crash)
    done_before = partial._read_position()
    assert 0 < done_before < world.commerce.recorder.max_notification_id()
    result = rebuild.rebuild(store, apps, PAGE, CONFIG, grace_seconds=0)
    assert result["generation"] == new == 2 and result["from_generation"] == old == 1
    fresh = SqlStore.open(None, tmp_path / "fresh")
    rebuild.migrate_views(fresh, CONFIG, [PAGE])
    for r in rebuild.runners_for([PAGE], fresh, apps, CONFIG, poll_interval=1):
        r.catch_up()
    assert store.query("SELECT * FROM pp_pages_g2 ORDER BY id") == fresh.query(
        "SELECT * FROM pp_pages_g1 ORDER BY id"
    )
    store.close()
    fresh.close()


def test_the_cli_prints_status_and_rebuilds_with_a_progress_bar(tmp_path: Path) -> None:
    env = {"REDCART_VAR_DIR": str(tmp_path / "var"), "REDCART_ADMIN_KEY": ADMIN_KEY,
           "REDCART_SECRET_KEY": SECRET_KEY}  # fmt: skip
    from tests.conftest import make_settings

    migrate(make_settings(None, tmp_path / "var"))
    cli = CliRunner()
    status = cli.invoke(main, ["projections", "status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    rows = {r["projection"]: r for r in json.loads(status.output)}
    assert rows["search_g1"]["generation"] == 1 and rows["search_g1"]["lag_events"] == 0
    assert rows["commerce_lists_g1"]["generation"] == 1  # every view is rebuilt blue/green
    table = cli.invoke(main, ["projections", "status"], env=env | {"COLUMNS": "200"})
    assert table.exit_code == 0 and "product_page_live_g1" in table.output
    rebuilt = cli.invoke(main, ["projections", "rebuild", "search", "--grace", "0"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "search: generation 2 serves reads (was 1)" in rebuilt.output
    assert re.search(r" \d+ events in [\d.]+s \([\d,]+/s\), then 0s for readers", rebuilt.output)
    unknown = cli.invoke(main, ["projections", "rebuild", "nope"], env=env)
    assert unknown.exit_code == 2 and "no read model named 'nope'" in unknown.output
    lists = cli.invoke(main, ["projections", "rebuild", "commerce_lists", "--grace", "0"], env=env)
    assert lists.exit_code == 0, lists.output
    assert "commerce_lists: generation 2 serves reads (was 1)" in lists.output


def test_status_counts_only_the_events_a_feed_still_has_to_apply(tmp_path: Path) -> None:
    world = populated()
    apps = {"Commerce": world.commerce, "Livestream": world.live}
    store = SqlStore.open(None, tmp_path)
    view = find("trending")  # reads notes and engagement, not stock or orders
    try:
        rebuild.migrate_views(store, CONFIG, [view])
        topics = set(rebuild.projections(view, 1, store.dialect, CONFIG)[0][1].topics)
        log = world.commerce.recorder.select_notifications(1, 100_000)
        (row,) = rebuild.status(store, apps, CONFIG, [view])
        assert row["behind_log"] == len(log)
        assert row["lag_events"] == sum(n.topic in topics for n in log) < len(log)
        assert row["lag_seconds"] >= 0
        (runner,) = rebuild.runners_for([view], store, apps, CONFIG, poll_interval=0.05)
        runner.catch_up()
        (row,) = rebuild.status(store, apps, CONFIG, [view])
        assert (row["lag_events"], row["behind_log"], row["lag_seconds"]) == (0, 0, 0.0)
    finally:
        store.close()
