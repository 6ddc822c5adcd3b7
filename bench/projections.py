"""`redcart bench projections`: rebuild speed and live lag of the attribution and dashboard views.

What runs, on a throwaway PostgreSQL database (REDCART_DATABASE_URL's server, default
postgresql://postgres@127.0.0.1:5432/test), dropped at the end:
1. `redcart migrate`, then a realistic log written with the domain aggregates: creators linked to
   merchants, referral links and promo codes, buyers' journeys of 1-4 touchpoints, and orders
   that are placed (10 % with a promo code, 5 % from a flash deal), paid, declared, cleared,
   shipped, delivered, partly or fully refunded, cancelled or left to expire; plus live sessions
   with audience samples and flash deals with their claims. REDCART_BENCH_EVENTS sets its size.
2. Rebuild: each of the three feeds (attribution, merchant_dashboard, live_analytics) caught up
   from position 0 into fresh tables by `BatchRunner` (what `redcart projections rebuild` and
   the workers run: batches of 1,000, msgspec decoding, each batch decided whole), and by the
   plain `ProjectionRunner` (the same batches, events decoded into domain objects and handed
   over one by one); events/s counts the events the feeds apply, not the log entries they
   skip. The baseline, in the same run: one transaction per event, over the first
   REDCART_BENCH_BASELINE_EVENTS events of the attribution feed.
3. Live lag: `redcart worker projections --view attribution --view dashboards` in its own
   process (LISTEN-woken), while this process appends ~REDCART_BENCH_RATE events/s to the
   Commerce log for `seconds`. Lag is from a save's commit to the moment both Commerce feeds'
   tracking positions (polled every 2 ms) have passed it.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
EVENTS = int(os.environ.get("REDCART_BENCH_EVENTS") or "60000")
BASELINE = int(os.environ.get("REDCART_BENCH_BASELINE_EVENTS") or "1500")
RATE = int(os.environ.get("REDCART_BENCH_RATE") or "1000")
START = datetime(2026, 10, 1, tzinfo=UTC)
GOAL = {"rebuild_events_per_s": 20_000, "lag_p99_ms": 100}


def run(seconds: float = 10.0, clients: int = 0, progress: bool = True) -> dict:
    from rich.console import Console

    from bench.orders import _machine, _terminate_on_sigterm, _throwaway_database

    console = Console(stderr=True, quiet=not progress, highlight=False)
    server = os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER
    with _terminate_on_sigterm(), contextlib.ExitStack() as cleanup:
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redcart-bench-")))
        url = cleanup.enter_context(_throwaway_database(server))
        env = {
            "REDCART_DATABASE_URL": url,
            "REDCART_VAR_DIR": str(tmp),
            "REDCART_ADMIN_KEY": "bench-admin-key",
            "REDCART_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        }
        from redcart.settings import Settings
        from redcart.wiring import migrate, read_model_apps

        settings = Settings.from_env(env)
        migrate(settings)
        apps = read_model_apps(settings)
        cleanup.callback(lambda: [a.close() for a in apps.values()])
        world = Log(apps["Commerce"], apps["Livestream"], random.Random(7))
        t = time.perf_counter()
        world.write(EVENTS)
        gc.freeze()  # the log's own objects stay for the lag phase: not the rebuild's to scan
        heads = {name: a.recorder.max_notification_id() or 0 for name, a in apps.items()}
        console.print(f"[dim]log written: {heads} in {time.perf_counter() - t:.1f}s[/]")
        rebuild = _rebuild(settings, apps, console)
        lag = _lag(settings, env, apps, world, seconds, tmp, console)
        machine = _machine(url)
    figures = {
        "benchmark": "projections",
        "log": heads,
        "rebuild": rebuild,
        "live_lag": lag,
        "goal": GOAL,
        "machine": machine,
    }
    console.print(
        f"[bold]rebuild {rebuild['batch_runner']['events_per_s']:.0f} events/s[/] (plain "
        f"runner {rebuild['plain_runner']['events_per_s']:.0f}/s, one txn per event "
        f"{rebuild['baseline']['events_per_s']:.0f}/s); live lag p50 {lag['p50_ms']} ms, "
        f"p99 {lag['p99_ms']} ms at {lag['events_per_s']:.0f} events/s"
    )
    return figures


# -- the log -----------------------------------------------------------------------------------


class Log:
    """A realistic log made by the aggregates' own methods: `events(n)` gives the next n or so
    events in log order (new orders interleaved with what happens to earlier ones)."""

    def __init__(self, commerce: Any, live: Any, rng: random.Random) -> None:
        from commerce.domain import ids
        from commerce.domain.creators import Creator, PromoCode, ReferralLink

        self.commerce, self.live, self.rng, self.ids = commerce, live, rng, ids
        self.merchants = [uuid4() for _ in range(20)]
        self.products = {m: [str(uuid4()) for _ in range(10)] for m in self.merchants}
        self.creators: dict[Any, list] = {m: [] for m in self.merchants}
        self.links: dict[Any, list] = {m: [] for m in self.merchants}
        self.codes: dict[Any, list] = {m: [] for m in self.merchants}
        self.journeys: dict = {}
        self.buyers = [uuid4() for _ in range(8_000)]
        made = []
        for i in range(300):
            user = uuid4()
            hashes = [f"h{i}"] if rng.random() < 0.2 else []
            creator = Creator(
                id=ids.creator_id(user),
                user_id=user,
                display_name=f"kol {i}",
                identity_hashes=hashes,
                at=START - timedelta(days=60),
            )
            for m in rng.sample(self.merchants, rng.randint(1, 3)):
                creator.link(m, rng.choice((500, 1000, 1500, 2000)), START - timedelta(days=60))
                self.creators[m].append(str(creator.id))
            made.append(creator)
        for n, kind in enumerate([ReferralLink] * 400 + [PromoCode] * 150):
            m = rng.choice(self.merchants)
            code = f"{'L' if kind is ReferralLink else 'P'}{n:05d}"
            terms = {
                "code": code,
                "creator_id": UUID(rng.choice(self.creators[m])),
                "merchant_id": m,
                "commission_rate_bp": rng.choice((1000, 2000)),
                "valid_from": START - timedelta(days=60),
                "valid_until": START + timedelta(days=300),
                "at": START - timedelta(days=60),
            }
            if kind is ReferralLink:
                made.append(ReferralLink(id=ids.referral_link_id(code), product_id=None, **terms))
                self.links[m].append((code, terms["creator_id"]))
            else:
                made.append(PromoCode(id=ids.promo_code_id(code), percent_off=10, **terms))
                self.codes[m].append((code, terms["creator_id"]))
        commerce.save(*made)
        self.clock = START
        self.due: list = []  # (when, seq, order, step): a heap
        self.seq = 0

    def write(self, events: int) -> None:
        """Commerce orders until the log holds about `events`, then a tenth as many live."""
        while (self.commerce.recorder.max_notification_id() or 0) < events:
            self.commerce.save(*self.events(1_000))
        self.write_live(events // 10)

    def events(self, count: int) -> list:
        """About `count` events as the log would have them: journeys and orders placed now,
        interleaved with what happens to earlier orders as their time comes."""
        from commerce.domain.errors import DomainError

        out: list = []
        while len(out) < count:
            self.clock += timedelta(seconds=self.rng.randint(30, 400))
            while self.due and self.due[0][0] <= self.clock:
                _, _, order, step = heapq.heappop(self.due)
                with contextlib.suppress(DomainError):  # e.g. refunded in full before delivery
                    step()
                out += order.collect_events()
            out += self._place()
        return out

    def _place(self) -> list:
        from commerce.domain.journeys import Journey, touchpoint
        from commerce.domain.orders import Order

        rng, now = self.rng, self.clock
        buyer, m = rng.choice(self.buyers), rng.choice(self.merchants)
        journey = self.journeys.get(buyer) or Journey(
            id=self.ids.journey_id(buyer), buyer_id=buyer, at=now - timedelta(days=9)
        )
        self.journeys[buyer] = journey
        touches = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choices(
                ("note_view", "note_click", "referral_click", "live_join", "live_click"),
                (40, 25, 15, 10, 10),
            )[0]
            creator, source = rng.choice(self.creators[m]), f"n{rng.randint(1, 999)}"
            if kind == "referral_click" and self.links[m]:
                source, creator = rng.choice(self.links[m])
            at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 9))
            touches.append(touchpoint(uuid4(), kind, UUID(str(creator)), source, None, at))
        journey.record(sorted(touches, key=lambda t: t["at"]))
        extra, dice = None, rng.random()
        if dice < 0.10 and self.codes[m]:
            code, creator = rng.choice(self.codes[m])
            extra = {
                "promo_code": code,
                "creator_id": str(creator),
                "percent_off": 10,
                "discount_fen": 1000,
            }
        elif dice < 0.15:
            extra = {
                "source": "live",
                "session_id": str(uuid4()),
                "deal_id": str(uuid4()),
                "creator_id": rng.choice(self.creators[m]),
                "claim_id": str(uuid4()),
                "host_merchant_id": str(m),
            }
        total = rng.randint(5_000, 80_000)
        order = Order(
            id=uuid4(),
            merchant_id=m,
            buyer_id=buyer,
            lines=[{"sku": "S", "product_id": rng.choice(self.products[m]), "quantity": 1}],
            quote={
                "goods_fen": total * 8 // 10,
                "freight_fen": total // 10,
                "tax_fen": total // 10,
                "total_fen": total,
            },
            identity={"identity_hash": f"h{rng.randint(0, 20_000)}"},
            address={},
            fx_rates={},
            placed_at=now,
            expires_at=now + timedelta(minutes=15),
            stock_ids=[],
            quota_id=uuid4(),
            attribution=extra,
        )
        self._lifecycle(order)
        return journey.collect_events() + order.collect_events()

    def _later(self, order: Any, after: timedelta, step: Any) -> None:
        self.seq += 1
        heapq.heappush(self.due, (order.placed_at + after, self.seq, order, step))

    def _lifecycle(self, order: Any) -> None:
        """Schedule what will happen to the order; each step is applied when its time comes."""
        rng, at, d = self.rng, order.placed_at, timedelta
        dice = rng.random()
        if dice < 0.12:
            self._later(order, d(minutes=3), lambda: order.cancel("no", "buyer", at + d(minutes=3)))
            return
        if dice < 0.20:
            self._later(order, d(minutes=20), lambda: order.expire(at + d(minutes=20)))
            return
        pay = lambda: order.mark_paid(f"p-{order.id}", order.total_fen, at + d(minutes=2))  # noqa: E731
        self._later(order, d(minutes=2), pay)
        if rng.random() < 0.7:
            self._later(order, d(hours=3), lambda: order.declare_customs("d", at + d(hours=3)))
            self._later(order, d(hours=20), lambda: order.clear_customs(at + d(hours=20)))
            self._later(order, d(days=1), lambda: order.ship("SF", "SF1", at + d(days=1)))
            days = d(days=rng.randint(3, 7))
            self._later(order, days, lambda: order.deliver(at + days))
        if rng.random() < 0.08:
            part = order.total_fen if rng.random() < 0.5 else order.total_fen // 3
            when = d(days=rng.randint(2, 25))
            self._later(order, when, lambda: order.refund("r1", part, "returned", at + when))

    def write_live(self, events: int) -> None:
        from livestream.domain.deals import FlashDeal
        from livestream.domain.sessions import LiveSession

        rng, written = self.rng, 0
        while written < events:
            m, at = rng.choice(self.merchants), self.clock
            session = LiveSession.schedule(
                host_merchant_id=m, title="bench", starts_at=at, now=at - timedelta(hours=1)
            )
            session.start(at)
            for i in range(60):
                viewers = rng.randint(50, 5000)
                session.count_audience(
                    viewers, viewers + 10, 10 * i, at + timedelta(seconds=10 * i), "api-1"
                )
            deals = []
            for _ in range(4):
                deal = FlashDeal.open(
                    session_id=session.id,
                    merchant_id=m,
                    sku="S",
                    warehouse_id=uuid4(),
                    price_fen=990,
                    quantity=100,
                    per_buyer_limit=2,
                    announced_at=at,
                    countdown_seconds=10,
                    duration_seconds=600,
                )
                opens = at + timedelta(seconds=11)
                claims = [uuid4() for _ in range(rng.randint(20, 60))]
                for claim in claims:
                    deal.claim(claim, uuid4(), 1, opens)
                for claim in claims:
                    if rng.random() < 0.8:
                        deal.pay(claim, opens + timedelta(seconds=30))
                    else:
                        deal.release(claim)
                deal.close(opens + timedelta(seconds=120))
                deals.append(deal)
            session.end(at + timedelta(minutes=15))
            recordings = self.live.save(session, *deals)
            written += len(recordings)
            self.clock += timedelta(minutes=20)


# -- rebuild -----------------------------------------------------------------------------------


def _feeds() -> list[tuple[str, str, Any]]:
    from projections.attribution_view import AttributionView
    from projections.dashboards import LiveAnalytics, MerchantDashboard

    return [
        ("attribution", "Commerce", AttributionView.for_generation),
        ("merchant_dashboard", "Commerce", MerchantDashboard.for_generation),
        ("live_analytics", "Livestream", LiveAnalytics.for_generation),
    ]


def _rebuild(settings: Any, apps: dict, console: Any) -> dict:
    """Every feed from position 0 into fresh tables (generations 101, 102, 103 of the views)."""
    from projections import runner as plain
    from projections.batching import BatchRunner
    from projections.registry import Generation, ReadConfig
    from projections.sqlstore import SqlStore

    store = SqlStore.open(settings.database_url, settings.var_dir)
    config = ReadConfig()

    def timed(kind: Any, number: int) -> dict:
        feeds, events, seconds = {}, 0, 0.0
        for name, source, build in _feeds():
            projection = build(Generation(number, store.dialect, config))
            plain.migrate(store, projection)
            runner = kind(apps[source], store, projection, batch_size=1000)
            t = time.perf_counter()
            applied = runner.catch_up()
            took = time.perf_counter() - t
            feeds[name] = {
                "events": applied,
                "seconds": round(took, 3),
                "events_per_s": round(applied / took) if took else None,
            }
            events, seconds = events + applied, seconds + took
            console.print(f"  {kind.__name__} {name}: {applied} events, {applied / took:,.0f}/s")
        return {
            "events": events,
            "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds) if seconds else None,
            "feeds": feeds,
        }

    try:
        plain_runner = timed(plain.ProjectionRunner, 101)
        batched = timed(BatchRunner, 102)
        same = [
            store.query(f"SELECT COUNT(*), SUM(seq) FROM attr_{t}_g{n}")
            for n in (101, 102)
            for t in ("orders", "commissions")
        ]
        baseline = _one_transaction_per_event(store, apps["Commerce"], config)
        console.print(f"  baseline: {baseline['events_per_s']:,.0f} events/s")
    finally:
        store.close()
    return {
        "plain_runner": plain_runner,
        "batch_runner": batched,
        "same_rows": same[:2] == same[2:],
        "baseline": baseline,
        "speedup_over_baseline": round(batched["events_per_s"] / baseline["events_per_s"], 1),
    }


def _one_transaction_per_event(store: Any, app: Any, config: Any) -> dict:
    """The runner's own transaction, one event at a time (lock tracking, apply, move it, commit
    durably: the views' batches commit with synchronous_commit off, see projections.batching),
    timed over BASELINE events from the middle of the log, so creators, links and journeys are
    already there, as in the rest of the rebuild."""
    from projections import runner as plain
    from projections.attribution_view import AttributionView
    from projections.batching import fact_from_event
    from projections.registry import Generation

    projection = AttributionView.for_generation(Generation(103, store.dialect, config))
    plain.migrate(store, projection)
    middle, position = (app.recorder.max_notification_id() or 0) // 2, 0
    while notes := app.recorder.select_notifications(  # untimed: the first half, batched
        position, 1000, stop=middle, topics=projection.topics, inclusive_of_start=False
    ):
        with store.transaction() as cur:
            events = [fact_from_event(app.mapper.to_domain_event(n), n.id) for n in notes]
            projection.apply_batch(cur, events)
        position = notes[-1].id
    notes = app.recorder.select_notifications(
        middle, BASELINE, topics=projection.topics, inclusive_of_start=False
    )
    t = time.perf_counter()
    for note in notes:
        with store.transaction() as cur:
            cur.execute(
                "SELECT position FROM projection_tracking WHERE name = %s FOR UPDATE",
                (projection.name,),
            )
            cur.fetchone()
            projection.begin_batch(cur)
            projection.apply(cur, app.mapper.to_domain_event(note), note.id)
            projection.end_batch(cur)
            cur.execute("SET LOCAL synchronous_commit = on")  # naive: each event durable
            cur.execute(
                "UPDATE projection_tracking SET position = %s WHERE name = %s",
                (note.id, projection.name),
            )
    took = time.perf_counter() - t
    return {
        "events": len(notes),
        "seconds": round(took, 3),
        "events_per_s": round(len(notes) / took) if took else None,
        "feed": "attribution",
        "from_position": middle,
    }


# -- live lag ----------------------------------------------------------------------------------


def _lag(
    settings: Any, env: dict, apps: dict, world: Log, seconds: float, tmp: Path, console: Any
) -> dict:
    import psycopg

    from bench.httpload import percentile

    app, names = apps["Commerce"], ("attribution_g1", "merchant_dashboard_g1")
    per_tick = max(1, RATE // 100)  # a save every 10 ms
    stream = world.events(int(seconds * 100) * per_tick)  # in log order: cut into equal saves
    ticks = [stream[i : i + per_tick] for i in range(0, int(seconds * 100) * per_tick, per_tick)]
    log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "redcart.cli",
            "worker",
            "projections",
            "--view",
            "attribution",
            "--view",
            "dashboards",
        ],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    seen: list[tuple[float, int]] = []  # (when, lowest position of the two feeds)
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT MIN(position), COUNT(*) FROM projection_tracking WHERE name = ANY(%s)",
                    (list(names),),
                ).fetchone()
                if rows and rows[1] == len(names):
                    seen.append((time.perf_counter(), int(rows[0])))
                stop.wait(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        head = app.recorder.max_notification_id() or 0
        deadline = time.monotonic() + 300
        while not seen or seen[-1][1] < head:  # the worker first catches up the whole log
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"projection worker stopped or stalled: {_tail(tmp)}")
            time.sleep(0.05)
        console.print(f"  worker caught up; feeding {per_tick * 100} events/s for {seconds:g}s")
        saves: list[tuple[float, int]] = []
        start = time.perf_counter()
        for n, events in enumerate(ticks):
            time.sleep(max(0.0, start + n / 100 - time.perf_counter()))
            recordings = app.save(*events)
            saves.append((time.perf_counter(), recordings[-1].notification.id))
        fed = time.perf_counter() - start
        time.sleep(1.0)
    finally:
        stop.set()
        poller.join(timeout=5)
        worker.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=10)
        log.close()
    lags, i = [], 0
    for committed, position in saves:  # both in order: one forward scan
        while i < len(seen) and (seen[i][0] < committed or seen[i][1] < position):
            i += 1
        lags.append((seen[i][0] - committed) * 1000 if i < len(seen) else None)
    done = sorted(x for x in lags if x is not None)
    return {
        "events": sum(len(t) for t in ticks),
        "events_per_s": round(sum(len(t) for t in ticks) / fed),
        "saves": len(saves),
        "not_applied": lags.count(None),
        "p50_ms": round(percentile(done, 50), 1),
        "p99_ms": round(percentile(done, 99), 1),
        "max_ms": round(done[-1], 1) if done else None,
        "poll_ms": 2,
    }


def _tail(tmp: Path) -> str:
    with contextlib.suppress(OSError):
        return (tmp / "worker.log").read_text()[-2000:]
    return ""
