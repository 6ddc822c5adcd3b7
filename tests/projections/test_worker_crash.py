"""Exactly once under a crash: `redcart worker projections` on PostgreSQL, every projection
process SIGKILLed in the middle of catching up, restarted by the supervisor, resumes from its
tracking row; the figures then equal a generation built from scratch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import psutil
import pytest

from commerce.domain import ids
from commerce.domain.accounts import FxRate
from commerce.domain.inventory import Stock
from commerce.domain.merchants import Merchant, Product, Warehouse
from commerce.domain.notes import Note
from commerce.domain.orders import Order
from projections import runner
from projections.rebuild import projections
from projections.registry import ReadConfig, find
from projections.sqlstore import SqlStore
from redcart.wiring import commerce_app, migrate
from tests.conftest import make_settings
from tests.projections.test_rebuild_equals_live import dump
from tests.servers import settings_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
VIEWS = [find(name) for name in ("product_page", "search", "trending")]
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def seed(app) -> int:  # type: ignore[no-untyped-def]
    """About 2,500 events: catalogue, stock, holds, paid orders, notes and their counts."""
    merchant = Merchant(id=uuid4(), name="Sakura", home_country="JP", settlement_currency="JPY",
                        api_key_hash="x")  # fmt: skip
    bonded = Warehouse(id=uuid4(), merchant_id=merchant.id, name="Ningbo", kind="bonded",
                       country="CN", address="a")  # fmt: skip
    merchant.register_warehouse(bonded.id)
    fx = FxRate(id=ids.fx_rate_id("JPY"), currency="JPY")
    fx.set(Decimal("0.05"), "t")
    app.save(merchant, bonded, fx)
    paid = 0
    for i in range(40):
        product = Product(id=ids.product_id(merchant.id, f"S{i}"), merchant_id=merchant.id,
                          sku=f"S{i}", title=f"防晒霜 {i}号", brand="Anessa", origin_country="JP",
                          hs_code="330499", category="beauty", list_price_minor=3000 + i,
                          currency="JPY", vat_rate=Decimal("0.13"),
                          consumption_tax_rate=Decimal("0"), weight_grams=90)  # fmt: skip
        stock = Stock(id=ids.stock_id(product.id, bonded.id), merchant_id=merchant.id,
                      product_id=product.id, warehouse_id=bonded.id, sku=f"S{i}")  # fmt: skip
        stock.receive(1000)
        app.save(product, stock)
        for j in range(10):
            at = T0 + timedelta(minutes=i * 10 + j)
            order = Order(id=uuid4(), merchant_id=merchant.id, buyer_id=uuid4(),
                          lines=[{"sku": f"S{i}", "product_id": str(product.id), "quantity": 2}],
                          quote={"total_fen": 100}, identity={}, address={}, fx_rates={},
                          placed_at=at, expires_at=at + timedelta(minutes=15), stock_ids=[],
                          quota_id=uuid4(), attribution=None)  # fmt: skip
            stock.reserve(order.id, 2, at + timedelta(minutes=15), at)
            if j % 3:
                order.mark_paid("p", 100, at)
                stock.confirm(order.id, at)
                paid += 2
            note = Note(id=uuid4(), author_id=order.buyer_id, title=f"笔记 {i}-{j}",
                        body="#好物", image_refs=[], product_ids=[product.id],
                        hashtags=["好物"], at=at)  # fmt: skip
            for k in range(3):
                note.count({"likes": k + 1, "saves": k % 2, "views": 10}, at, f"f{k}")
            app.save(order, stock, note)
    return paid


def positions(store: SqlStore) -> dict[str, int]:
    return dict(store.query("SELECT name, position FROM projection_tracking"))


def test_killed_workers_resume_and_figures_stay_exact(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(postgres_url, tmp_path / "var")
    migrate(settings)
    app = commerce_app(settings, create_table=False)
    store = SqlStore.open(postgres_url, tmp_path)
    paid = seed(app)
    head = app.recorder.max_notification_id()
    env = settings_env(postgres_url, tmp_path / "var") | {"REDCART_PROJECTION_BATCH_SIZE": "50"}
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "redcart.cli", "worker", "projections"],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    mine = ("product_page_g1", "search_g1", "trending_g1")
    try:
        deadline = time.monotonic() + 60
        while not all(positions(store).get(name, 0) > 0 for name in mine):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.02)
        at_kill = positions(store)
        assert any(at_kill[name] < head for name in mine), "caught up before the kill"
        children = psutil.Process(worker.pid).children()
        assert len(children) >= len(mine)
        for child in children:
            child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not all(positions(store)[name] >= head for name in mine):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.1)
        restarted = {c.pid for c in psutil.Process(worker.pid).children()}
        assert restarted and not restarted & {c.pid for c in children}
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    assert "restarting" in (tmp_path / "worker.log").read_text()
    config = ReadConfig()
    for view in VIEWS:
        for feed, fresh in projections(view, 77, "postgres", config):
            if feed.source != "Commerce":
                continue
            runner.migrate(store, fresh)
            runner.ProjectionRunner(app, store, fresh).catch_up()
            live = next(p for f, p in projections(view, 1, "postgres", config) if f is feed)
            assert dump(store, live) == dump(store, fresh), live.name
    pages = store.query("SELECT doc FROM pp_pages_g1")
    assert sum(json.loads(doc)["units_sold"] for (doc,) in pages) == paid
    store.close()
    app.close()
