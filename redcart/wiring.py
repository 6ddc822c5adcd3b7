"""Builds each context's runtime from settings: the one place that knows how it all fits."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from commerce.api.runtime import CommerceRuntime
from commerce.application import Commerce
from commerce.platform.eventstore import event_store_env, is_postgres
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.platform.vault import IdentityVault
from livestream.api.runtime import LivestreamRuntime
from livestream.application import Livestream
from livestream.engine.ownership import AdvisoryOwnership, NeverOwner, Ownership, SoleOwnership
from livestream.engine.router import DealEngine
from livestream.room.pg_backplane import PgBackplane
from projections import registry
from projections.api.runtime import ReadModels
from projections.batching import FollowingBatchRunner
from projections.commerce_lists import CommerceLists
from projections.rebuild import active_generation, migrate_views
from projections.registry import Generation, ReadConfig
from projections.sqlstore import SqlStore
from redcart.settings import Settings

LISTS = "commerce_lists"
# A read-model worker is woken by every commit; in a flash sale that is hundreds a second, and
# each look costs ~5 queries even when there is nothing for it. One look per view every 0.25 s
# at most (BENCHMARKS.md, stop 20: the views worker's CPU for a sale).
WORKER_LOOK_EVERY_S = 0.25


def commerce_app(settings: Settings, *, create_table: bool) -> Commerce:
    env = event_store_env(
        settings.database_url, settings.var_dir, Commerce.name, create_table=create_table
    )
    return Commerce(env=env)


def livestream_app(settings: Settings, *, create_table: bool) -> Livestream:
    # The deal writer plus room snapshots and session reads: fewer idle connections than
    # commerce's (eventsourcing opens pool_size at once; overflow ones only when needed).
    env = event_store_env(
        settings.database_url, settings.var_dir, Livestream.name, create_table=create_table,
        pool_size=4, max_overflow=8,
    )  # fmt: skip
    return Livestream(env=env)


def migrate(settings: Settings) -> list[str]:
    """Create every table once, before any server or worker starts."""
    done = []
    app = commerce_app(settings, create_table=True)
    app.close()
    done.append("commerce events")
    from payments import process
    from redcart.payments_wiring import payments_app

    payments_app(settings, create_table=True).close()
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        process.migrate(store)
        IdentityVault(store, settings.secret_key.encode()).migrate()
        from commerce.services.engagement_ledger import EngagementLedger

        EngagementLedger(store).migrate()
    finally:
        store.close()
    done.append("payments events, process tracking, customs identity vault, engagement ledger")
    livestream_app(settings, create_table=True).close()
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        from livestream.engine.placement import ClaimOrders
        from livestream.engine.settlement import DealSettlement

        DealSettlement.migrate(store)
        ClaimOrders.migrate(store)
    finally:
        store.close()
    if is_postgres(settings.database_url):
        AdvisoryOwnership.migrate(settings.database_url)  # type: ignore[arg-type]
    done.append("livestream events, deal owners, deal settlement and claim orders tracking")
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        done += [f"read model {name}" for name in migrate_views(store, read_config(settings))]
    finally:
        store.close()
    return done


def projection_worker(
    settings: Settings, views: list[str] | None = None, inline: bool = False
) -> None:
    """Keep the read models of projections.registry current until SIGTERM.

    On PostgreSQL, by default, a supervisor with one restarted-on-exit process per read model
    (projections.worker.supervise); `views` runs just those, in this process; `inline` runs all
    of them in this process (SQLite always does: it has one writer anyway)."""
    from projections import registry
    from projections.worker import supervise

    chosen = [registry.find(name) for name in views] if views else list(registry.VIEWS)
    if views or inline or not is_postgres(settings.database_url):
        _run_views(settings, chosen)
        return
    supervise({v.name: (lambda v=v: _run_views(settings, [v])) for v in chosen})


def build_commerce(settings: Settings) -> CommerceRuntime:
    # SQLite is one process: creating tables at start is safe there and spares a step.
    app = commerce_app(settings, create_table=not is_postgres(settings.database_url))
    store = SqlStore.open(settings.database_url, settings.var_dir)
    if not is_postgres(settings.database_url):
        migrate_views(store, read_config(settings), [registry.find(LISTS)])
        from payments import process

        process.migrate(store)
    vault = IdentityVault(store, settings.secret_key.encode())
    if not is_postgres(settings.database_url):
        vault.migrate()
    lists = _lists_runner(app, store, read_config(settings))
    writer = GroupCommitWriter(app, max_batch=settings.writer_max_batch, on_commit=lists.wake)
    return CommerceRuntime(
        app=app,
        writer=writer,
        cfg=settings.commerce_config(),
        store=store,
        lists=lists,
        admin_key=settings.admin_key,
        vault=vault,
    )


def _lists_runner(app: Commerce, store: SqlStore, config: ReadConfig) -> FollowingBatchRunner:
    """The list views, kept in the API process (read-your-writes waits on it); it follows a
    blue/green rebuild's switch, and readers use the tables of its current generation."""
    return FollowingBatchRunner(
        app,
        store,
        active=lambda: active_generation(store, LISTS),
        build=lambda n: CommerceLists(Generation(n, store.dialect, config)),
        active_ttl=0.5,  # looked up at most twice a second, not on every commit's pass
        poll_interval=0.25,
    )


def build_livestream(
    settings: Settings, commerce: CommerceRuntime, owns_deals: bool = True
) -> LivestreamRuntime:
    """Live sessions and flash deals: their own events table and writer, the deal engine
    (one owner per deal across processes on PostgreSQL) and the websocket room hub.
    `owns_deals=False`: a worker that forwards every deal command to the deal's owner."""
    postgres = is_postgres(settings.database_url)
    app = livestream_app(settings, create_table=not postgres)
    writer = GroupCommitWriter(app, max_batch=settings.writer_max_batch)
    # On PostgreSQL the URL is set once the internal listener is bound (redcart.app's lifespan).
    ownership: Ownership = (
        AdvisoryOwnership(settings.database_url, "") if postgres else SoleOwnership()  # type: ignore[arg-type]
    )
    if not owns_deals:
        ownership = NeverOwner(ownership)
    engine = DealEngine(writer, commerce.cfg.clock, ownership, settings.secret_key.encode())
    # Rooms span API processes through LISTEN/NOTIFY on PostgreSQL; embedded, one process.
    backplane = PgBackplane(settings.database_url) if postgres else None  # type: ignore[arg-type]
    live = LivestreamRuntime(
        app=app,
        writer=writer,
        commerce=commerce,
        clock=commerce.cfg.clock,
        engine=engine,
        backplane=backplane,
        settle_grace_seconds=settings.settle_grace_seconds,
    )
    commerce.coupons = live.coupon_terms  # checkout reads a live coupon's terms from its session
    commerce.coupon_moved = live.coupon_moved  # and tells its room how many uses are left
    return live


def _one_at_a_time(settings: Settings, follower: Any, store: Any) -> dict[str, Any]:
    """A tracked follower's lease: on SQLite the one process runs it (its tracking row made
    here, as SQLite servers make their tables); on PostgreSQL an advisory lease by its name."""
    from projections.lease import AdvisoryLease

    if not is_postgres(settings.database_url):
        follower.migrate(store)
        return {}
    lease = AdvisoryLease(settings.database_url, f"redcart.{follower.NAME}")  # type: ignore[arg-type]
    return {"lease": lease.held, "release": lease.release}


def deal_settlement(settings: Settings, commerce: CommerceRuntime, live: LivestreamRuntime):
    """Deals hear of their orders' payments and cancellations (one active process)."""
    from livestream.engine.settlement import DealSettlement

    lease = _one_at_a_time(settings, DealSettlement, commerce.store)
    return DealSettlement(
        commerce, live.engine, units_changed=live.deal_room.units_changed, **lease
    )


def claim_orders(settings: Settings, live: LivestreamRuntime, poll_interval: float = 0.5):
    """Orders placed from committed flash-deal claims (one active process)."""
    from livestream.engine.placement import ClaimOrders
    from projections.burst import hold_for

    lease = _one_at_a_time(settings, ClaimOrders, live.commerce.store)
    hold = hold_for(settings.worker_hold_seconds)
    return ClaimOrders(live, poll_interval=poll_interval, hold=hold, **lease)


def claim_orders_worker(settings: Settings, poll_interval: float = 0.05) -> None:
    """`redcart worker claim-orders` (with REDCART_CLAIM_ORDERS=worker on the API processes):
    the claims' orders placed on a core of their own. It owns no deal; a refused order's claim
    is released through the deal's owner, and the rooms hear of it over the backplane. It
    polls, since the claims are committed in other processes."""
    import asyncio

    if not is_postgres(settings.database_url):
        raise ValueError("the claim-orders worker needs PostgreSQL (REDCART_DATABASE_URL)")

    async def work() -> None:
        commerce = build_commerce(settings)
        live = build_livestream(settings, commerce, owns_deals=False)
        placement = claim_orders(settings, live, poll_interval)
        commerce.writer.start()
        live.writer.start()
        if isinstance(live.backplane, PgBackplane):
            await live.backplane.start()
        live.deal_room.start()
        try:
            await placement.run_forever()
        finally:
            placement.release()
            await live.deal_room.stop()
            await live.engine.aclose()
            await live.hub.stop()
            live.writer.stop()
            commerce.writer.stop()

    asyncio.run(work())


# -- read models (projections.registry) ---------------------------------------------------------


def read_config(settings: Settings) -> ReadConfig:
    return ReadConfig.from_env(settings.freight, settings.cbec)


def read_model_apps(
    settings: Settings, sources: set[str] | None = None, readers: int = 1
) -> dict[str, Application]:
    """The applications whose logs read models follow, by name (registry.COMMERCE...).

    Read-only here and used by one runner thread at a time, so one pooled connection each:
    eventsourcing opens `pool_size` connections at once, and a worker per read model with the
    API's 10 per application would exhaust PostgreSQL's 100."""
    create = not is_postgres(settings.database_url)
    made: dict[str, Application] = {}
    for cls in (Commerce, Livestream):
        if sources is None or cls.name in sources:
            env = event_store_env(settings.database_url, settings.var_dir, cls.name,
                                  create_table=create, pool_size=1,
                                  max_overflow=readers - 1)  # fmt: skip
            made[cls.name] = cls(env=env)
    return made


def _run_views(settings: Settings, views: list) -> None:
    from projections.rebuild import runners_for
    from projections.worker import run_forever

    sources = sorted({feed.source for view in views for feed in view.feeds})
    feeds = sum(len(view.feeds) for view in views)
    apps = read_model_apps(settings, set(sources), readers=feeds)
    # a worker process per read model: keep each to a handful of PostgreSQL connections
    store = SqlStore.open(settings.database_url, settings.var_dir, max_size=2)
    runners = runners_for(
        views, store, apps, read_config(settings), poll_interval=1.0,
        hold_longest=settings.worker_hold_seconds,
        min_interval=WORKER_LOOK_EVERY_S,
    )  # fmt: skip
    pg = settings.database_url if is_postgres(settings.database_url) else None

    def close() -> None:
        store.close()
        for app in apps.values():
            app.close()

    # eventsourcing announces a log's commits on its events table's name
    channels = {f"{name.lower()}_events": [r for r in runners if r.app is apps[name]]
                for name in sources}  # fmt: skip
    run_forever(runners, pg, channels, on_stop=close)


def build_read_models(
    settings: Settings, commerce: CommerceRuntime, live: LivestreamRuntime
) -> ReadModels:
    """Product page, search and trending for the API; in-process runners unless a worker
    keeps them (REDCART_PROJECTIONS=worker). Woken by both writers' commits."""
    from projections.rebuild import runners_for
    from projections.registry import VIEWS

    config = read_config(settings)
    store = SqlStore.open(settings.database_url, settings.var_dir)
    if not is_postgres(settings.database_url):
        migrate_views(store, config)
    apps = {Commerce.name: commerce.app, Livestream.name: live.app}
    runners = []
    if settings.projections == "inprocess":
        mine = [view for view in VIEWS if view.inprocess]
        runners = runners_for(mine, store, apps, config, poll_interval=0.25)
    reads = ReadModels(store, config, apps, runners, commerce.cfg.clock, settings.database_url)
    if runners:
        commerce.writer.on_commit_also(reads.wake)
        live.writer.on_commit_also(reads.wake)
    return reads


def projection_status(settings: Settings) -> list[dict]:
    """`redcart projections status`: every feed's generation, position, head and lag."""
    from projections.rebuild import status

    apps = read_model_apps(settings)
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        return status(store, apps, read_config(settings))
    finally:
        store.close()
        for app in apps.values():
            app.close()


def rebuild_projection(settings: Settings, name: str, **options: Any) -> dict:
    """`redcart projections rebuild NAME`: blue/green, see projections.rebuild."""
    from projections.rebuild import rebuild

    view = registry.find(name)
    apps = read_model_apps(settings)
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        return rebuild(store, apps, view, read_config(settings), **options)
    finally:
        store.close()
        for app in apps.values():
            app.close()
