"""Builds the payments runtime: gateways from settings, the order-side callbacks, the process.

`REDCART_PAYMENTS=sandbox` (the default) talks to the local sandbox gateways that
`redcart sandbox` serves (keys shared through `var/sandbox`); `live` reads each provider's
credentials from the environment (key files, never key text in events or logs); `off` disables
payments. Stripe joins in either mode when `REDCART_STRIPE_API_KEY` is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

from commerce.api.runtime import CommerceRuntime
from commerce.domain.errors import NotFound
from commerce.domain.orders import Order
from commerce.platform.eventstore import event_store_env, is_postgres
from commerce.services.access import require_order_access
from commerce.services.payments import record_payment
from payments.port import PaymentGateway
from payments.records import Payments
from payments.runtime import PaymentsRuntime
from redcart.settings import Settings

ALIPAY_APP_ID, WECHAT_MCHID, WECHAT_APPID = "2021000000000001", "1900000109", "wxd678efh567hg6787"


def sandbox_urls(env: dict[str, str]) -> dict[str, str]:
    return {
        "alipay": env.get("REDCART_SANDBOX_ALIPAY_URL", "http://127.0.0.1:8601"),
        "wechatpay": env.get("REDCART_SANDBOX_WECHATPAY_URL", "http://127.0.0.1:8602"),
    }


def _read(path: str) -> str:
    return Path(path).read_text()


def build_gateways(settings: Settings, env: dict[str, str]) -> dict[str, PaymentGateway]:
    from payments.adapters.alipay import AlipayGateway
    from payments.adapters.stripe import StripeGateway
    from payments.adapters.wechatpay import WeChatPayGateway

    mode = env.get("REDCART_PAYMENTS", "sandbox")
    gateways: dict[str, PaymentGateway] = {}
    if mode == "sandbox":
        from payments.sandbox.keys import load_or_create_keys

        urls, key_dir = sandbox_urls(env), settings.var_dir / "sandbox"
        ali, wx = load_or_create_keys(key_dir, "alipay"), load_or_create_keys(key_dir, "wechatpay")
        gateways["alipay"] = AlipayGateway(
            gateway_url=f"{urls['alipay']}/gateway.do", app_id=ALIPAY_APP_ID,
            merchant_private_key=ali.merchant_private_key, alipay_public_key=ali.gateway_public_key,
        )  # fmt: skip
        gateways["wechatpay"] = WeChatPayGateway(
            base_url=urls["wechatpay"], mchid=WECHAT_MCHID, appid=WECHAT_APPID,
            merchant_private_key=wx.merchant_private_key,
            merchant_serial_no=wx.identity["merchant_serial_no"],
            platform_public_key=wx.gateway_public_key,
            platform_public_key_id=wx.identity["platform_public_key_id"],
            apiv3_key=wx.identity["apiv3_key"],
        )  # fmt: skip
    elif mode == "live":
        if env.get("REDCART_ALIPAY_APP_ID"):
            gateways["alipay"] = AlipayGateway(
                gateway_url=env["REDCART_ALIPAY_GATEWAY_URL"], app_id=env["REDCART_ALIPAY_APP_ID"],
                merchant_private_key=_read(env["REDCART_ALIPAY_PRIVATE_KEY_FILE"]),
                alipay_public_key=_read(env["REDCART_ALIPAY_PUBLIC_KEY_FILE"]),
            )  # fmt: skip
        if env.get("REDCART_WECHATPAY_MCHID"):
            gateways["wechatpay"] = WeChatPayGateway(
                base_url=env.get("REDCART_WECHATPAY_BASE_URL", "https://api.mch.weixin.qq.com"),
                mchid=env["REDCART_WECHATPAY_MCHID"], appid=env["REDCART_WECHATPAY_APPID"],
                merchant_private_key=_read(env["REDCART_WECHATPAY_PRIVATE_KEY_FILE"]),
                merchant_serial_no=env["REDCART_WECHATPAY_SERIAL_NO"],
                platform_public_key=_read(env["REDCART_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE"]),
                platform_public_key_id=env["REDCART_WECHATPAY_PLATFORM_PUBLIC_KEY_ID"],
                apiv3_key=env["REDCART_WECHATPAY_APIV3_KEY"],
            )  # fmt: skip
    elif mode != "off":
        raise ValueError("REDCART_PAYMENTS must be 'sandbox', 'live' or 'off'")
    if mode != "off" and env.get("REDCART_STRIPE_API_KEY"):
        gateways["stripe"] = StripeGateway(
            api_key=env["REDCART_STRIPE_API_KEY"],
            webhook_secret=env.get("REDCART_STRIPE_WEBHOOK_SECRET", ""),
            base_url=env.get("REDCART_STRIPE_BASE_URL", "https://api.stripe.com"),
        )
    return gateways


def payments_app(settings: Settings, *, create_table: bool) -> Payments:
    # payments are a few per order: a small pool, growing only when needed
    env = event_store_env(settings.database_url, settings.var_dir, Payments.name,
                          create_table=create_table, pool_size=3, max_overflow=7)  # fmt: skip
    return Payments(env=env)


def build_payments(
    settings: Settings, commerce: CommerceRuntime, env: dict[str, str] | None = None
) -> PaymentsRuntime:
    env = dict(os.environ if env is None else env)

    app = payments_app(settings, create_table=not is_postgres(settings.database_url))

    async def order_for_payment(order_id: UUID, principal) -> dict:  # type: ignore[no-untyped-def]
        order = await commerce.read(order_id, Order)
        if order is None:
            raise NotFound("no such order", field="order_id")
        require_order_access(principal, order.merchant_id, order.buyer_id)
        titles = ", ".join(line["title"] for line in order.lines)
        return {"status": order.status(commerce.cfg.clock()), "total_fen": order.total_fen,
                "subject": f"redcart order: {titles}"[:120], "payment_ref": order.payment_ref,
                "recipient": order.address["recipient"]}  # fmt: skip

    async def record(*args: object) -> dict:
        return await commerce.writer.submit(record_payment, commerce.cfg, *args)

    async def payer_identity(order_id: UUID) -> tuple[str, str] | None:
        from litestar.concurrency import sync_to_thread

        return await sync_to_thread(commerce.vault.get, order_id)

    async def file_customs(*args: object) -> dict:
        from commerce.services.customs import file_customs_documents

        return await commerce.writer.submit(file_customs_documents, commerce.cfg, *args)

    public = env.get("REDCART_PUBLIC_URL", f"http://{settings.host}:{settings.port}")
    sandbox = sandbox_urls(env) if env.get("REDCART_PAYMENTS", "sandbox") == "sandbox" else {}
    return PaymentsRuntime(
        app=app,
        gateways=build_gateways(settings, env),
        public_url=public.rstrip("/"),
        order_for_payment=order_for_payment,
        record_payment=record,
        payer_identity=payer_identity,
        file_customs=file_customs,
        sandbox_pages=sandbox,
    )


def payment_process(settings: Settings, commerce: CommerceRuntime, payments: PaymentsRuntime):  # type: ignore[no-untyped-def]
    from payments.process import PaymentProcess
    from projections.lease import AdvisoryLease

    lease = (
        AdvisoryLease(settings.database_url, "redcart:payments_process").held  # type: ignore[arg-type]
        if is_postgres(settings.database_url)
        else (lambda: True)
    )
    return PaymentProcess(commerce.app, commerce.store, payments, lease=lease)


async def reconcile_all(settings: Settings, bill_date=None) -> list:  # type: ignore[no-untyped-def]
    """Run reconciliation from the command line with this process's own writer: every payment
    against the gateway's query, then the day's bill (Beijing date; today by default) against
    the ledger."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from litestar.concurrency import sync_to_thread

    from payments.reconcile import all_payments, compare_bills, reconcile
    from redcart.wiring import build_commerce

    commerce = build_commerce(settings)
    commerce.writer.start()
    runtime = build_payments(settings, commerce)
    try:
        payments = await sync_to_thread(all_payments, runtime)
        findings = await reconcile(runtime, payments)
        day = bill_date or datetime.now(ZoneInfo("Asia/Shanghai")).date()
        payments = await sync_to_thread(all_payments, runtime)  # as settled just now
        bill = await compare_bills(runtime, payments, day)
        return findings + [f.__class__(f.out_trade_no, f.provider, f.ours, f.theirs,
                                       f"bill {day}: {f.action}") for f in bill]  # fmt: skip
    finally:
        await runtime.aclose()
        commerce.writer.stop()
        runtime.app.close()
        commerce.store.close()
        commerce.app.close()
