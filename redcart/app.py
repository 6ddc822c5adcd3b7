"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from litestar import Litestar, MediaType, get
from litestar.concurrency import sync_to_thread
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from commerce.api.admin import AdminController, get_fx_rate
from commerce.api.auth import provide_idempotency, provide_principal
from commerce.api.catalog import MerchantController, sign_up_buyer
from commerce.api.deps import Runtime
from commerce.api.orders import OrderController
from commerce.api.problems import EXCEPTION_HANDLERS, problem
from commerce.api.referrals import (
    CreatorController,
    PromoCodeController,
    ReferralLinkController,
    follow_referral,
)
from commerce.api.reviews import ReviewController
from commerce.api.runtime import CommerceRuntime
from commerce.api.social import NoteController, record_touchpoint
from commerce.services.engagement import EngagementBuffer
from commerce.sweeper import sweep_forever
from livestream.api.controller import LiveSessionController
from livestream.api.deals import DealController
from livestream.api.forwarded import forwarded_deal_commands
from livestream.engine.ownership import AdvisoryOwnership
from livestream.room.pg_backplane import PgBackplane
from payments.api import declare_to_customs, order_payments, start_payment, webhook
from projections.api import read_routes
from projections.api.dashboards import analytics_routes
from projections.api.page_renewal import renew_pages_forever
from redcart.internal_listener import InternalListener
from redcart.openapi_contract import complete as complete_openapi
from redcart.payments_wiring import build_payments, payment_process
from redcart.settings import Settings
from redcart.wiring import (
    build_commerce,
    build_livestream,
    build_read_models,
    claim_orders,
    deal_settlement,
)

THREADS = 16  # at most the PostgreSQL pool size: a thread never waits on a connection


@get("/healthz", tags=["ops"], media_type=MediaType.JSON)
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@get("/readyz", tags=["ops"])
async def readyz(runtime: Runtime) -> object:
    """The event store and the read models answer."""
    try:
        head = await sync_to_thread(runtime.app.recorder.max_notification_id)
        await sync_to_thread(runtime.store.query, "SELECT 1")
    except Exception as exc:
        return problem(503, "Not ready", f"store check failed: {type(exc).__name__}", "not_ready")
    return {"status": "ready", "events": head or 0, "lists_position": runtime.lists.position}


def create_app(
    settings: Settings | None = None,
    runtime: CommerceRuntime | None = None,
    env: dict[str, str] | None = None,
) -> Litestar:
    settings = settings or Settings.from_env(env)
    # httpx logs request URLs at INFO; gateway URLs can carry buyer identity (Alipay customs).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    runtime = runtime or build_commerce(settings)
    payments = build_payments(settings, runtime, env)
    process = payment_process(settings, runtime, payments)
    runtime.writer.on_commit_also(process.notify)
    live = build_livestream(settings, runtime)
    settlement = deal_settlement(settings, runtime, live)
    runtime.writer.on_commit_also(settlement.notify)
    placement = claim_orders(settings, live) if settings.claim_orders == "inprocess" else None
    if placement is not None:
        live.writer.on_commit_also(placement.notify)
    reads = build_read_models(settings, runtime, live)
    listener: InternalListener | None = None

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        # The writer's cache holds many long-lived aggregates; with CPython's default
        # thresholds, full collections over them stall every request for tens of ms.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        nonlocal listener
        runtime.writer.start()
        runtime.engagement = EngagementBuffer.of(runtime).start()
        live.writer.start()
        if isinstance(live.engine.ownership, AdvisoryOwnership):
            loopback = settings.internal_host in ("127.0.0.1", "localhost")
            bind = "127.0.0.1" if loopback else "0.0.0.0"  # noqa: S104 (a private network)
            listener = InternalListener(app, bind, settings.internal_host, settings.internal_port)
            live.engine.ownership.self_url = await listener.start()
        if isinstance(live.backplane, PgBackplane):
            await live.backplane.start()  # listening before any room event is published
        live.deal_room.start()
        settling = asyncio.create_task(settlement.run_forever())
        placing = asyncio.create_task(placement.run_forever()) if placement else None
        audience = asyncio.create_task(live.count_audiences_forever())
        if settings.projections == "inprocess":
            runtime.lists.start()
        reads.start()  # its own runners only in-process; reads either way
        renewing = asyncio.create_task(renew_pages_forever(reads)) if reads.on_postgres else None
        sweeper = asyncio.create_task(sweep_forever(runtime, settings.sweep_interval_seconds))
        manager = asyncio.create_task(process.run_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            manager.cancel()
            settling.cancel()
            settlement.release()
            if placement is not None and placing is not None:
                placing.cancel()
                placement.release()
            audience.cancel()
            if renewing is not None:
                renewing.cancel()
            await reads.aclose()  # first: its runners read both applications' logs
            await live.deal_room.stop()
            if listener is not None:
                await listener.stop()
            await live.engine.aclose()
            await live.hub.stop()
            live.writer.stop()
            live.app.close()
            await payments.aclose()
            payments.app.close()
            runtime.lists.stop()
            runtime.engagement.stop()
            runtime.writer.stop()
            runtime.store.close()
            runtime.app.close()

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            AdminController,
            get_fx_rate,
            MerchantController,
            sign_up_buyer,
            OrderController,
            ReviewController,
            NoteController,
            record_touchpoint,
            CreatorController,
            ReferralLinkController,
            PromoCodeController,
            follow_referral,
            start_payment,
            order_payments,
            declare_to_customs,
            webhook,
            LiveSessionController,
            DealController,
            forwarded_deal_commands,
            live.routes(),
            read_routes(reads),
            analytics_routes(reads),
        ],
        dependencies={
            "runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "idempotency": Provide(provide_idempotency),
            "payments": Provide(lambda: payments, use_cache=True, sync_to_thread=False),
            "live": Provide(lambda: live, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="redcart",
            version="0.1.0",
            description="Event-sourced cross-border social commerce and live shopping.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        debug=False,
    )
    app.state.commerce = runtime  # guards read it before dependency injection runs
    app.state.live = live  # so does the claim route's fast path
    app.state.reads = reads  # and the product page's
    complete_openapi(app)
    return app
