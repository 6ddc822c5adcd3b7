"""Same-run baseline of `redcart bench flash-deal`: optimistic retries on one aggregate.

On its own fresh database: the same kind of deal (same quantity, per-buyer limit 1, the same
number of buyers), claimed in-process by `threads` threads, each claim on its own: load the
FlashDeal from the repository (every event of it: nothing is cached), `deal.claim(...)` through
the very command the server runs (livestream.engine.commands.claim), `app.save(deal)`, and on
a version clash (IntegrityError) load again and retry, up to 8 times (bench.naive). No HTTP, no
order: the baseline does less per claim than the server, never more.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from bench.flash_deal_seed import COUNTDOWN_S, PAYMENT_WINDOW_S, PER_BUYER_LIMIT, PRICE_FEN, SKU


def run_naive(
    env: dict[str, str],
    units: int,
    buyers: int,
    seconds: float,
    warmup: float,
    threads: int,
    console: Any,
) -> dict[str, Any]:
    from bench import naive
    from bench.orders import _cpu_breakdown, _postmaster_pid, _snapshot
    from livestream.domain.deals import FlashDeal
    from livestream.engine import commands
    from redcart.settings import Settings
    from redcart.wiring import livestream_app, migrate

    settings = Settings.from_env(env)
    migrate(settings)
    app = livestream_app(settings, create_table=False)
    postmaster = _postmaster_pid(env["REDCART_DATABASE_URL"])
    now = datetime.now(UTC)
    deal = FlashDeal.open(
        id=uuid4(), session_id=uuid4(), merchant_id=uuid4(), sku=SKU, warehouse_id=uuid4(),
        price_fen=PRICE_FEN, quantity=units, per_buyer_limit=PER_BUYER_LIMIT,
        announced_at=now - timedelta(seconds=COUNTDOWN_S + 1), countdown_seconds=COUNTDOWN_S,
        duration_seconds=20 * 60, payment_window_seconds=PAYMENT_WINDOW_S,
        settle_grace_seconds=settings.settle_grace_seconds,
    )  # fmt: skip
    app.save(deal)
    buyer_ids = [uuid4() for _ in range(buyers)]
    rngs = [random.Random(i) for i in range(threads)]

    def clock() -> datetime:
        return datetime.now(UTC)

    def args_for(thread: int, n: int) -> tuple:
        return (clock, deal.id, uuid4(), rngs[thread].choice(buyer_ids), 1)

    live: dict = {"done": 0}
    marks: dict[str, Any] = {}
    stop = threading.Event()

    def observe() -> None:
        start = time.perf_counter()
        end = start + warmup + seconds
        if stop.wait(warmup):
            return
        marks["cpu0"] = _snapshot(None, postmaster)
        last, last_done = time.perf_counter(), live["done"]
        while not stop.wait(min(1.0, max(0.0, end - time.perf_counter()))):
            now = time.perf_counter()
            if now >= end - 0.01:
                marks["cpu1"] = _snapshot(None, postmaster)
                return
            rate = (live["done"] - last_done) / (now - last)
            console.print(f"  {now - start - warmup:5.1f}s  {rate:7.0f} claim attempts/s (naive)")
            last, last_done = now, live["done"]

    watcher = threading.Thread(target=observe, name="naive-observer", daemon=True)
    watcher.start()
    try:
        figures = naive.run(
            app, commands.claim, args_for, threads=threads, seconds=seconds, warmup=warmup,
            ok=lambda answer: answer.get("new") is True, live=live,
        )  # fmt: skip
        final = app.repository.get(deal.id)
    finally:
        stop.set()
        watcher.join(timeout=5)
        app.close()
    attempts = sum(figures["outcomes"].values())
    figures["attempts"] = attempts
    figures["attempts_per_s"] = round(attempts / seconds, 1)
    figures["won_per_s"] = round(figures["ok"] / seconds, 1)
    figures["units_claimed"] = final.units_claimed(datetime.now(UTC))
    figures["oversold"] = max(0, figures["units_claimed"] - units)
    figures["events_in_deal"] = final.version
    if "cpu0" in marks and "cpu1" in marks:
        figures["cpu"] = _cpu_breakdown(marks["cpu0"], marks["cpu1"])
    return figures
