"""`redcart bench reads`: product page and search requests/s and latency, on PostgreSQL, against
a trivial endpoint (`GET /healthz`) of the same server in the same run.

What runs:
1. A throwaway database `redcart_bench_<random>` (as `redcart bench orders` makes it),
   `redcart migrate`, then a catalogue seeded through the use cases: five merchants (JP, KR,
   FR, US, AU) with a bonded and a direct-mail warehouse each, 300 products with Chinese,
   English and mixed titles (some listed by several merchants, so pages carry several offers),
   stock, paid orders, reviews, 200 notes with engagement, and live sessions pinning products.
2. The API (uvicorn, uvloop, httptools, one worker) with the read models kept by
   `redcart worker projections` (the PostgreSQL topology), once they have caught up.
3. Phases of `clients` closed-loop keep-alive connections (bench.httpload), each `seconds`
   long after a warm-up: `GET /healthz`; `GET /products/{id}/page` over random products, as
   any client asks (a rendered page may be reused for up to REDCART_PAGE_CACHE_SECONDS), and
   again with `Cache-Control: no-cache` (one indexed read and a render per request); then
   `GET /search?q=` over Chinese, English and mixed queries, and the trending feed.
Goal (issue): product page ≥ 60% of the trivial endpoint's requests/s, p99 ≤ 20 ms. Both
product page phases are compared with it, so the cache's share is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import UUID, uuid4

from bench import orders as common

WARMUP_S = 1.0
MEASURED = ("product_page", "search", "trending")
QUERIES = ["防晒", "防晒霜", "Anessa", "anessa 防晒", "面膜", "精华", "花王", "眼罩",
           "vitamin", "Vitamin C 精华", "雪花秀", "sunscreen SPF50", "保湿", "#好物"]  # fmt: skip
BRANDS = [("Anessa", "安热沙"), ("Kao", "花王"), ("Sulwhasoo", "雪花秀"), ("Lancome", "兰蔻"),
          ("Swisse", "Swisse"), ("La Roche-Posay", "理肤泉"), ("Blackmores", "澳佳宝")]  # fmt: skip
KINDS = [("防晒霜 SPF50+ 60ml", "sunscreen"), ("蒸汽眼罩 12片装", "personal_care"),
         ("滋盈肌本润颜水", "toner"), ("小黑瓶精华 50ml", "serum"),
         ("Vitamin C 维生素C片", "supplement"), ("保湿面膜 5片", "mask")]  # fmt: skip
MERCHANTS = [("Sakura Beauty", "JP", "JPY", 400), ("Seoul Glow", "KR", "KRW", 4000),
             ("Paris Pharmacie", "FR", "EUR", 3), ("NY Vitamins", "US", "USD", 3),
             ("Sydney Health", "AU", "AUD", 4)]  # fmt: skip
QUOTE = {"goods_fen": 9000, "freight_fen": 1000, "tax_fen": 910, "total_fen": 10910,
         "dutiable_fen": 10000, "shipments": []}  # fmt: skip
RATES = {"JPY": "0.0478", "KRW": "0.0052", "EUR": "7.8", "USD": "7.2", "AUD": "4.7"}


def run(seconds: float = 10.0, clients: int = 64, progress: bool = True) -> dict:
    from rich.console import Console

    if seconds <= 0 or clients < 1:
        raise ValueError("seconds must be > 0 and clients >= 1")
    console = Console(stderr=True, quiet=not progress, highlight=False, soft_wrap=True)
    with common._terminate_on_sigterm(), contextlib.ExitStack() as cleanup:
        server_url = os.environ.get("REDCART_DATABASE_URL") or common.DEFAULT_SERVER
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redcart-bench-")))
        db_url = cleanup.enter_context(common._throwaway_database(server_url))
        env = common._env(db_url, tmp / "var", "bench-admin-key-0123456789", "s" * 32)
        t = time.perf_counter()
        products = _prepare(env)
        console.print(f"[dim]bench reads: {urlsplit(db_url).path[1:]} seeded in "
                      f"{time.perf_counter() - t:.1f}s ({len(products)} products)[/]")  # fmt: skip
        server = cleanup.enter_context(common._server(env, tmp / "server.log"))
        _wait_caught_up(env, console)
        machine = common._machine(db_url)
        fresh = b"Cache-Control: no-cache\r\n"
        page = lambda c, n: f"/products/{random.choice(products)}/page"  # noqa: E731
        phases = {
            "trivial": (lambda c, n: "/healthz", b""),
            "product_page": (page, b""),
            "product_page_uncached": (page, fresh),
            "search": (lambda c, n: "/search?q=" + quote(random.choice(QUERIES)), b""),
            "trending": (lambda c, n: "/feed/trending?limit=20", b""),
        }
        results = {
            name: _phase(server, name, path, headers, clients, seconds, console)
            for name, (path, headers) in phases.items()
        }
        server_log = server.stop()
    return _figures(results, clients, seconds, machine, server_log, len(products))


def _prepare(env: dict[str, str]) -> list[str]:
    from redcart.settings import Settings
    from redcart.wiring import migrate

    settings = Settings.from_env(env)
    migrate(settings)
    return _seed(settings)


def _seed(settings: Any) -> list[str]:
    from commerce.domain import ids
    from commerce.domain.orders import Order
    from commerce.domain.reviews import Review
    from commerce.platform.groupcommit import GroupCommitWriter
    from commerce.services import catalog, social
    from commerce.services.idempotency import Idempotency
    from livestream.domain.sessions import LiveSession
    from redcart.wiring import commerce_app, livestream_app

    rng = random.Random(7)
    cfg = settings.commerce_config()
    app = commerce_app(settings, create_table=False)
    writer = GroupCommitWriter(app).start()
    live_app = livestream_app(settings, create_table=False)
    run_ = writer.execute

    def key(who: str, name: str) -> Idempotency:
        return Idempotency(who, f"bench:{name}", f"bench:{name}")

    products: list[tuple[UUID, UUID]] = []  # (merchant, product)
    try:
        for currency, rate in RATES.items():
            run_(catalog.set_fx_rate, cfg, currency, Decimal(rate), "bench")
        for m, (name, country, currency, unit) in enumerate(MERCHANTS):
            mid = UUID(run_(catalog.onboard_merchant, cfg, key("admin", name), name, country,
                            currency).body["id"])  # fmt: skip
            who = f"merchant:{mid}"
            wids = [UUID(run_(catalog.open_warehouse, cfg, key(who, kind), mid, f"{name} {kind}",
                              kind, "CN" if kind == "bonded" else country, "bench").body["id"])
                    for kind in ("bonded", "direct_mail")]  # fmt: skip
            for i in range(60):
                brand, cn = BRANDS[(i + m) % len(BRANDS)]
                kind, category = KINDS[(i * 5 + m) % len(KINDS)]
                fields = {"sku": f"B{m}-{i:03d}", "title": f"{cn} {brand} {kind}",
                          "brand": brand, "origin_country": country, "hs_code": "3304990099",
                          "category": category, "list_price_minor": unit * (20 + i % 40),
                          "weight_grams": 50 + 10 * (i % 30), "vat_rate": Decimal("0.13"),
                          "consumption_tax_rate": Decimal("0")}  # fmt: skip
                pid = ids.product_id(mid, fields["sku"])
                run_(catalog.list_product, cfg, None, mid, fields)
                for wid in wids[: 1 + i % 2]:
                    run_(catalog.receive_stock, cfg, mid, pid, wid, 50 + i)
                products.append((mid, pid))
        buyers = [uuid4() for _ in range(40)]

        def paid_order(uow: Any, buyer: UUID, mid: UUID, pid: UUID, stars: int) -> None:
            now = cfg.clock()
            order = Order(id=uuid4(), merchant_id=mid, buyer_id=buyer,
                          lines=[{"sku": "x", "product_id": str(pid), "quantity": 1}],
                          quote=QUOTE, identity={}, address={}, fx_rates={},
                          placed_at=now, expires_at=now + timedelta(minutes=15), stock_ids=[],
                          quota_id=uuid4(), attribution=None)  # fmt: skip
            order.mark_paid("bench", QUOTE["total_fen"], now)
            uow.add(order)
            uow.add(Review(id=ids.review_id(order.id, pid), order_id=order.id, product_id=pid,
                           merchant_id=mid, buyer_id=buyer, stars=stars, text="",
                           at=now))  # fmt: skip

        for _ in range(300):
            mid, pid = rng.choice(products)
            run_(paid_order, rng.choice(buyers), mid, pid, rng.choice([3, 4, 5, 5, 5]))

        def engage(uow: Any, note_id: UUID, deltas: dict) -> None:
            note = uow.get(note_id)
            note.count(deltas, cfg.clock(), str(uuid4()))

        for n in range(200):
            tagged = [pid for _, pid in rng.sample(products, rng.randint(1, 3))]
            body = f"{rng.choice(QUERIES)} 真的好用, 回购第{n % 7 + 2}次 #好物 #护肤"
            title = f"笔记 {n}: {rng.choice(KINDS)[0]}"
            answer = run_(social.post_note, cfg, None, rng.choice(buyers), title, body, [], tagged)
            note_id = UUID(answer.body["id"])
            counts = {"views": rng.randint(10, 5000), "likes": rng.randint(0, 300),
                      "saves": rng.randint(0, 80), "shares": rng.randint(0, 20),
                      "comments": rng.randint(0, 30)}  # fmt: skip
            run_(engage, note_id, counts)
        for m, (mid, _) in enumerate(products[::60]):  # the aggregate itself, not the use cases
            now = cfg.clock()
            starts = now + timedelta(minutes=1)
            session = LiveSession.schedule(
                host_merchant_id=mid, title=f"直播 {m}", starts_at=starts, now=now
            )
            if m % 2 == 0:
                session.start(now)
                for _, pid in [p for p in products if p[0] == mid][:3]:
                    session.pin(pid, now)
            live_app.save(session)
    finally:
        writer.stop()
        app.close()
        live_app.close()
    return [str(pid) for _, pid in products]


def _wait_caught_up(env: dict[str, str], console: Any, timeout: float = 180.0) -> None:
    """Measure reads of complete views: wait until the views read here reached the head."""
    from redcart.settings import Settings
    from redcart.wiring import projection_status

    settings = Settings.from_env(env)
    deadline = time.monotonic() + timeout
    while True:
        rows = projection_status(settings)
        behind = [r["projection"] for r in rows if r["view"] in MEASURED and r["lag_events"]]
        if not behind:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"read models still behind after {timeout:.0f}s: {behind}")
        console.print(f"[dim]  waiting for read models: {', '.join(behind)}[/]")
        time.sleep(1.0)


def _phase(
    server: Any, name: str, path: Any, headers: bytes, clients: int, seconds: float, console: Any
) -> dict:
    import uvloop

    from bench import httpload

    host = f"Host: 127.0.0.1:{server.port}\r\n".encode() + headers

    def make_request(client: int, n: int) -> bytes:
        return b"GET %s HTTP/1.1\r\n%s\r\n" % (path(client, n).encode(), host)

    postmaster = common._postmaster_pid(server.db_url)
    marks: dict[str, Any] = {}

    async def main() -> httpload.LoadResult:
        async def observe() -> None:
            await asyncio.sleep(WARMUP_S)
            marks["cpu0"] = common._snapshot(server.pid, postmaster)
            await asyncio.sleep(seconds)
            marks["cpu1"] = common._snapshot(server.pid, postmaster)

        watcher = asyncio.create_task(observe())
        result = await httpload.closed_loop("127.0.0.1", server.port, clients, make_request,
                                            seconds=seconds, warmup=WARMUP_S)  # fmt: skip
        await watcher
        return result

    result = uvloop.run(main())
    ok = sorted(result.latencies_ms.get(200, []))
    pct = httpload.percentile
    figures = {
        "requests_per_s": round(len(ok) / seconds, 1),
        "p50_ms": common._round(pct(ok, 50)),
        "p90_ms": common._round(pct(ok, 90)),
        "p99_ms": common._round(pct(ok, 99)),
        "max_ms": common._round(ok[-1] if ok else None),
        "not_ok": {str(s): n for s, n in result.statuses.items() if s != 200},
        "errors": dict(result.errors),
    }
    if figures["not_ok"]:
        figures["samples"] = {str(s): b.decode(errors="replace")[:300]
                              for s, b in result.samples.items() if s != 200}  # fmt: skip
    if "cpu0" in marks and "cpu1" in marks:
        cpu = common._cpu_breakdown(marks["cpu0"], marks["cpu1"])
        figures["server_cores"] = cpu.get("server_process")
    console.print(f"  {name:13} {figures['requests_per_s']:8.0f} req/s  p50 "
                  f"{figures['p50_ms']} ms  p99 {figures['p99_ms']} ms")  # fmt: skip
    return figures


def _figures(results: dict, clients: int, seconds: float, machine: dict, log: str,
             products: int) -> dict:  # fmt: skip
    trivial = results["trivial"]["requests_per_s"] or None
    ratio = {k: round(v["requests_per_s"] / trivial, 3) if trivial else None
             for k, v in results.items() if k != "trivial"}  # fmt: skip

    def met(phase: str) -> bool:
        p99 = results[phase]["p99_ms"]
        return bool(ratio[phase] and ratio[phase] >= 0.6 and p99 is not None and p99 <= 20)

    figures: dict[str, Any] = {
        "benchmark": "reads",
        **results,
        "vs_trivial": ratio,
        "goal": {"product_page_vs_trivial": 0.6, "product_page_p99_ms": 20},
        "goal_met": {
            "product_page": met("product_page"),
            "product_page_uncached": met("product_page_uncached"),
        },
        "page_cache_seconds": float(os.environ.get("REDCART_PAGE_CACHE_SECONDS", "1.0")),
        "clients": clients,
        "seconds": seconds,
        "warmup_s": WARMUP_S,
        "products": products,
        "server": {
            "app": common.SERVER_APP,
            "workers": common.WORKERS,
            "projections": common.PROJECTIONS,
        },
        "machine": machine,
    }
    noteworthy = [ln for ln in log.splitlines() if ln.strip() and "Shutting down" not in ln]
    if noteworthy:
        figures["server_log_tail"] = noteworthy[-10:]
    return json.loads(json.dumps(figures))
