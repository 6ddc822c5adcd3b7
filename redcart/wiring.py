"""Builds each context's runtime from settings: the one place that knows how it all fits."""

from __future__ import annotations

from commerce.api.runtime import CommerceRuntime
from commerce.application import Commerce
from commerce.platform.eventstore import event_store_env, is_postgres
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.platform.vault import IdentityVault
from livestream.api.runtime import LivestreamRuntime
from livestream.application import Livestream
from livestream.engine.ownership import AdvisoryOwnership, Ownership, SoleOwnership
from livestream.engine.router import DealEngine
from projections import runner as projection_runner
from projections.commerce_lists import CommerceLists
from projections.sqlstore import SqlStore
from redcart.settings import Settings


def commerce_app(settings: Settings, *, create_table: bool) -> Commerce:
    env = event_store_env(
        settings.database_url, settings.var_dir, Commerce.name, create_table=create_table
    )
    return Commerce(env=env)


def livestream_app(settings: Settings, *, create_table: bool) -> Livestream:
    env = event_store_env(
        settings.database_url, settings.var_dir, Livestream.name, create_table=create_table
    )
    return Livestream(env=env)


def migrate(settings: Settings) -> list[str]:
    """Create every table once, before any server or worker starts."""
    done = []
    app = commerce_app(settings, create_table=True)
    app.close()
    done.append("commerce events")
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        projection_runner.migrate(store, CommerceLists())
    finally:
        store.close()
    done.append("commerce list views")
    from payments import process
    from redcart.payments_wiring import payments_app

    payments_app(settings, create_table=True).close()
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        process.migrate(store)
        IdentityVault(store, settings.secret_key.encode()).migrate()
    finally:
        store.close()
    done.append("payments events, process tracking, customs identity vault")
    livestream_app(settings, create_table=True).close()
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        from livestream.engine.settlement import DealSettlement

        DealSettlement.migrate(store)
    finally:
        store.close()
    if is_postgres(settings.database_url):
        AdvisoryOwnership.migrate(settings.database_url)  # type: ignore[arg-type]
    done.append("livestream events, deal owners, deal settlement tracking")
    return done


def projection_worker(settings: Settings) -> None:
    """Run the commerce read models until SIGTERM (see projections.worker)."""
    from projections.worker import run_forever

    app = commerce_app(settings, create_table=not is_postgres(settings.database_url))
    store = SqlStore.open(settings.database_url, settings.var_dir)
    runner = projection_runner.ProjectionRunner(app, store, CommerceLists(), poll_interval=1.0)
    channel = f"{Commerce.name.lower()}_events"
    pg = settings.database_url if is_postgres(settings.database_url) else None

    def close() -> None:
        store.close()
        app.close()

    run_forever([runner], pg, channel, on_stop=close)


def build_commerce(settings: Settings) -> CommerceRuntime:
    # SQLite is one process: creating tables at start is safe there and spares a step.
    app = commerce_app(settings, create_table=not is_postgres(settings.database_url))
    store = SqlStore.open(settings.database_url, settings.var_dir)
    projection = CommerceLists()
    if not is_postgres(settings.database_url):
        projection_runner.migrate(store, projection)
        from payments import process

        process.migrate(store)
    vault = IdentityVault(store, settings.secret_key.encode())
    if not is_postgres(settings.database_url):
        vault.migrate()
    lists = projection_runner.ProjectionRunner(app, store, projection, poll_interval=0.25)
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


def build_livestream(settings: Settings, commerce: CommerceRuntime) -> LivestreamRuntime:
    """Live sessions and flash deals: their own events table and writer, the deal engine
    (one owner per deal across processes on PostgreSQL) and the websocket room hub."""
    postgres = is_postgres(settings.database_url)
    app = livestream_app(settings, create_table=not postgres)
    writer = GroupCommitWriter(app, max_batch=settings.writer_max_batch)
    # On PostgreSQL the URL is set once the internal listener is bound (redcart.app's lifespan).
    ownership: Ownership = (
        AdvisoryOwnership(settings.database_url, "") if postgres else SoleOwnership()  # type: ignore[arg-type]
    )
    engine = DealEngine(writer, commerce.cfg.clock, ownership, settings.secret_key.encode())
    return LivestreamRuntime(
        app=app,
        writer=writer,
        commerce=commerce,
        clock=commerce.cfg.clock,
        engine=engine,
        settle_grace_seconds=settings.settle_grace_seconds,
    )


def deal_settlement(settings: Settings, commerce: CommerceRuntime, live: LivestreamRuntime):
    """Deals hear of their orders' payments and cancellations (one active process)."""
    from livestream.engine.settlement import DealSettlement
    from projections.lease import AdvisoryLease

    if not is_postgres(settings.database_url):
        DealSettlement.migrate(commerce.store)
        return DealSettlement(commerce, live.engine)
    lease = AdvisoryLease(settings.database_url, "redcart.deal_settlement")  # type: ignore[arg-type]
    return DealSettlement(commerce, live.engine, lease=lease.held)
