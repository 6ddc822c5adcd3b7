"""`redcart bench deal-writer`: a flash deal's writer alone, with no HTTP and no event loop.

What a claim costs on the deal's side: the claims of a sale handed to the group-commit writer
in waves (as the API hands over the claims in flight), and the CPU each of the writer's threads
spends per claim (the writer decides, its saver thread encodes and commits). In a sale those
threads share the GIL with the API's event loop (BENCHMARKS.md, flash deal), so their CPU per
claim is what a winner costs the process beyond its HTTP request.

What runs, on a throwaway PostgreSQL database (as bench.orders): one deal of `claims` + 10
units; `claims` claims by distinct buyers, each carrying its order's inputs as the API's claims
do, handed over `wave` at a time, the next wave once the previous one is answered. Baseline in
the same run, on the same database: the same claims one at a time (`wave` = 1), so each is its
own batch and its own commit.

Knobs: REDCART_BENCH_CLAIMS (5,000), REDCART_BENCH_WAVE (100).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from bench.flash_deal_seed import COUNTDOWN_S, PAYMENT_WINDOW_S, PRICE_FEN, SKU
from bench.orders import DEFAULT_SERVER, _throwaway_database

ORDER = {  # what a claim carries for its order (livestream.api.claims), as a buyer sends it
    "identity": {
        "name_masked": "王*红",
        "resident_id_masked": "110101********123X",
        "identity_hash": "ab" * 32,
    },
    "address": {
        "province": "上海市",
        "city": "上海市",
        "district": "浦东新区",
        "line1": "世纪大道100号",
        "postcode": "200120",
        "phone": "13800138000",
        "recipient": "王小红",
    },
    "fingerprint": "cd" * 32,
    "payment_provider": None,
}


def _claim_args() -> dict[str, Any]:
    return {"claim_id": uuid4(), "buyer_id": uuid4(), "quantity": 1, "order": ORDER}


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each of this process's threads, by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            name = names.get(int(tid), "other")
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _claims(db_url: str, var: Path, claims: int, wave: int) -> dict[str, Any]:
    from commerce.platform.groupcommit import GroupCommitWriter
    from livestream.domain.deals import FlashDeal
    from livestream.engine.commands import COMMANDS
    from livestream.engine.router import _call
    from redcart.settings import Settings
    from redcart.wiring import livestream_app, migrate

    settings = Settings.from_env({"REDCART_DATABASE_URL": db_url, "REDCART_VAR_DIR": str(var)})
    migrate(settings)
    app = livestream_app(settings, create_table=False)
    now = datetime.now(UTC)
    deal = FlashDeal.open(
        id=uuid4(), session_id=uuid4(), merchant_id=uuid4(), sku=SKU, warehouse_id=uuid4(),
        price_fen=PRICE_FEN, quantity=claims + 10, per_buyer_limit=1,
        announced_at=now - timedelta(seconds=COUNTDOWN_S + 1), countdown_seconds=COUNTDOWN_S,
        duration_seconds=20 * 60, payment_window_seconds=PAYMENT_WINDOW_S, settle_grace_seconds=30,
    )  # fmt: skip
    app.save(deal)
    writer = GroupCommitWriter(app, max_batch=settings.writer_max_batch).start()
    claim = COMMANDS["claim"]

    def clock() -> datetime:
        return datetime.now(UTC)

    try:
        cpu0, t0, done = _thread_cpu(), time.perf_counter(), 0
        while done < claims:
            futures = [
                writer._enqueue(_call, (claim, clock, deal.id, _claim_args()))
                for _ in range(min(wave, claims - done))
            ]
            for future in futures:
                assert future.result()["new"]
            done += len(futures)
        wall, cpu1 = time.perf_counter() - t0, _thread_cpu()
        stats = dict(writer.stats)
    finally:
        writer.stop()
        app.close()
    names = {"group-commit": "writer", "group-commit-save_0": "saver", "MainThread": "caller"}
    per_claim = {
        label: round((cpu1.get(name, 0.0) - cpu0.get(name, 0.0)) * 1e6 / claims, 1)
        for name, label in names.items()
    }
    return {
        "claims": claims,
        "wave": wave,
        "claims_per_s": round(claims / wall, 1),
        "batches": stats["batches"],
        "mean_batch": round(stats["commands"] / stats["batches"], 1) if stats["batches"] else None,
        "cpu_us_per_claim": per_claim,
        "writer_and_saver_cpu_us_per_claim": round(per_claim["writer"] + per_claim["saver"], 1),
    }


def run(seconds: float = 10.0, clients: int = 0, progress: bool = True) -> dict:
    """`seconds` and `clients` are not used: the run is a number of claims."""
    from rich.console import Console

    from bench.orders import _machine

    claims = int(os.environ.get("REDCART_BENCH_CLAIMS") or 5_000)
    wave = int(os.environ.get("REDCART_BENCH_WAVE") or 100)
    if claims < 1 or wave < 1:
        raise ValueError("REDCART_BENCH_CLAIMS and REDCART_BENCH_WAVE must be at least 1")
    console = Console(stderr=True, quiet=not progress, highlight=False)
    server_url = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
    with contextlib.ExitStack() as cleanup:
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redcart-bench-")))
        console.print(f"[dim]bench deal-writer: {claims} claims, {wave} at a time[/]")
        batched = _claims(cleanup.enter_context(_throwaway_database(server_url)), tmp, claims, wave)
        console.print(f"  batched: {batched['claims_per_s']:.0f} claims/s")
        base_n = max(1, min(claims, 1_000))  # one commit each: slow, so fewer
        baseline = _claims(cleanup.enter_context(_throwaway_database(server_url)), tmp, base_n, 1)
        console.print(f"  one at a time: {baseline['claims_per_s']:.0f} claims/s")
    return {
        "benchmark": "deal-writer",
        "batched": batched,
        "baseline_one_at_a_time": baseline,
        "speedup": round(batched["claims_per_s"] / baseline["claims_per_s"], 1),
        "machine": _machine(server_url),
    }
