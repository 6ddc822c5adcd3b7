"""WeChat Pay APIv3 sandbox gateway as a Litestar app (platform-public-key mode).

Every request must carry a valid ``WECHATPAY2-SHA256-RSA2048`` Authorization made with the
merchant key; every answer is signed with the platform key and names it in ``Wechatpay-Serial``.
Payment and refund results arrive as AES-GCM encrypted callbacks, resent on WeChat's schedule
until the merchant answers 200/204. Third-party SDKs (wechatpayv3) run against it unchanged apart
from the base URL.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath

from payments.sandbox.common import sandbox_app, shared_routes
from payments.sandbox.keys import load_or_create_keys
from payments.sandbox.ledger import LedgerError, SandboxTrade, TradeBook
from payments.sandbox.notifier import (
    WECHATPAY_RETRY_INTERVALS,
    NotificationDispatcher,
    SandboxSwitches,
)
from payments.sandbox.wechatpay_extras import customs_and_bill_routes
from payments.sandbox.wechatpay_wire import (
    SandboxSigner,
    authenticate,
    encrypted_envelope,
    refund_json,
    transaction_json,
)
from payments.signing import load_private_key, load_public_key

ERRORS = {  # neutral ledger code -> (HTTP status, WeChat error code)
    "TRADE_NOT_EXIST": (404, "ORDER_NOT_EXIST"),
    "TRADE_NOT_PENDING": (403, "ORDERPAID"),
    "OUT_TRADE_NO_USED": (403, "OUT_TRADE_NO_USED"),
    "TRADE_PAID": (400, "ORDERPAID"),
    "TRADE_NOT_PAID": (403, "TRADE_ERROR"),
    "REFUND_AMT_EXCEEDED": (403, "NOT_ENOUGH"),
    "REFUND_NO_USED": (400, "INVALID_REQUEST"),
}


def create_wechatpay_sandbox(
    key_dir: Path | str,
    *,
    mchid: str = "1900000109",
    appid: str = "wxd678efh567hg6787",
    time_scale: float = 1.0,
    retry_intervals: Sequence[float] = WECHATPAY_RETRY_INTERVALS,
    refund_settle_seconds: float = 60.0,
    switches: SandboxSwitches | None = None,
) -> Litestar:
    keys = load_or_create_keys(key_dir, "wechatpay")
    apiv3_key = keys.identity["apiv3_key"]
    platform_key = load_private_key(keys.gateway_private_key)
    signer = SandboxSigner(platform_key, keys.identity["platform_public_key_id"])
    merchant_key = load_public_key(keys.merchant_public_key)
    merchant_serial = keys.identity["merchant_serial_no"]
    book = TradeBook("4200")
    refund_status: dict[str, str] = {}

    def render(payload: dict[str, Any], active: SandboxSwitches) -> tuple[dict, bytes]:
        body = payload["body"].encode()
        headers = signer.headers(body, late_by=active.late_by_seconds, corrupt=active.bad_signature)
        return {**headers, "Content-Type": "application/json"}, body

    dispatcher = NotificationDispatcher(
        retry_intervals=retry_intervals,
        time_scale=time_scale,
        render=render,
        is_acknowledged=lambda r: r.status_code in (200, 204),
        switches=switches,
    )

    def notify_paid(trade: SandboxTrade) -> None:
        body = encrypted_envelope(
            "TRANSACTION.SUCCESS",
            "支付成功",
            "transaction",
            transaction_json(trade, appid, mchid),
            apiv3_key,
        )
        dispatcher.emit(json.loads(body)["id"], trade.notify_url, {"body": body})

    def on_decline(trade: SandboxTrade) -> None:
        """WeChat only notifies successful payments; a failed attempt is seen by querying."""

    def settle_refund(trade: SandboxTrade, out_refund_no: str, notify_url: str | None) -> None:
        refund_status[out_refund_no] = "SUCCESS"
        refund = next(r for r in trade.refunds if r.out_refund_no == out_refund_no)
        resource = {
            k: v
            for k, v in refund_json(trade, refund, "SUCCESS").items()
            if k not in ("channel", "create_time")
        }
        resource.update(mchid=mchid, refund_status="SUCCESS")
        resource["amount"].pop("currency")
        body = encrypted_envelope("REFUND.SUCCESS", "退款成功", "refund", resource, apiv3_key)
        dispatcher.emit(json.loads(body)["id"], notify_url or trade.notify_url, {"body": body})

    async def guarded(request: Request) -> tuple[dict[str, Any], Response[bytes] | None]:
        body, problem = await authenticate(
            request, mchid=mchid, serial_no=merchant_serial, merchant_key=merchant_key
        )
        if problem:
            return {}, signer.error(401, "SIGN_ERROR", problem)
        try:
            return (json.loads(body) if body else {}), None
        except ValueError:
            return {}, signer.error(400, "PARAM_ERROR", "body is not JSON")

    def ledger_error(exc: LedgerError) -> Response[bytes]:
        status, code = ERRORS.get(exc.code, (400, "INVALID_REQUEST"))
        return signer.error(status, code, exc.message)

    @post("/v3/pay/transactions/native")
    async def native_order(request: Request) -> Response[bytes]:
        data, denied = await guarded(request)
        if denied:
            return denied
        try:
            if data["mchid"] != mchid or data["appid"] != appid:
                return signer.error(400, "PARAM_ERROR", "appid/mchid do not match")
            amount = data["amount"]
            if not isinstance(amount["total"], int) or amount["total"] <= 0:
                return signer.error(400, "PARAM_ERROR", "amount.total must be positive fen")
            trade = book.create(
                data["out_trade_no"],
                amount["total"],
                amount.get("currency", "CNY"),
                data["description"],
                data["notify_url"],
                attach=data.get("attach", ""),
            )
        except KeyError as exc:
            return signer.error(400, "PARAM_ERROR", f"missing {exc}")
        except LedgerError as exc:
            return ledger_error(exc)
        token = base64.urlsafe_b64encode(trade.out_trade_no.encode()).decode().rstrip("=")
        return signer.respond({"code_url": f"weixin://wxpay/bizpayurl?pr={token}"})

    @get("/v3/pay/transactions/out-trade-no/{out_trade_no:str}")
    async def query(request: Request, out_trade_no: FromPath[str]) -> Response[bytes]:
        _, denied = await guarded(request)
        if denied:
            return denied
        try:
            return signer.respond(transaction_json(book.get(out_trade_no), appid, mchid))
        except LedgerError as exc:
            return ledger_error(exc)

    @post("/v3/pay/transactions/out-trade-no/{out_trade_no:str}/close")
    async def close(request: Request, out_trade_no: FromPath[str]) -> Response[bytes]:
        _, denied = await guarded(request)
        if denied:
            return denied
        try:
            book.close(out_trade_no)
        except LedgerError as exc:
            return ledger_error(exc)
        return signer.respond(None, 204)

    @post("/v3/refund/domestic/refunds")
    async def refund(request: Request) -> Response[bytes]:
        data, denied = await guarded(request)
        if denied:
            return denied
        try:
            amount = data["amount"]
            trade = book.get(data["out_trade_no"])
            if amount["total"] != trade.amount_minor:
                return signer.error(400, "PARAM_ERROR", "amount.total differs from the order")
            trade, record, created = book.refund(
                trade.out_trade_no, data["out_refund_no"], amount["refund"]
            )
        except KeyError as exc:
            return signer.error(400, "PARAM_ERROR", f"missing {exc}")
        except LedgerError as exc:
            return ledger_error(exc)
        if created:
            refund_status[record.out_refund_no] = "PROCESSING"
            asyncio.get_running_loop().call_later(
                refund_settle_seconds * time_scale,
                settle_refund,
                trade,
                record.out_refund_no,
                data.get("notify_url"),
            )
        return signer.respond(refund_json(trade, record, refund_status[record.out_refund_no]))

    @get("/v3/refund/domestic/refunds/{out_refund_no:str}")
    async def query_refund(request: Request, out_refund_no: FromPath[str]) -> Response[bytes]:
        _, denied = await guarded(request)
        if denied:
            return denied
        try:
            trade, record = book.find_refund(out_refund_no)
        except LedgerError:
            return signer.error(404, "RESOURCE_NOT_EXISTS", "no such refund")
        return signer.respond(refund_json(trade, record, refund_status[out_refund_no]))

    handlers = [
        native_order,
        query,
        close,
        refund,
        query_refund,
        *customs_and_bill_routes(
            book=book,
            signer=signer,
            guarded=guarded,
            ledger_error=ledger_error,
            appid=appid,
            mchid=mchid,
            platform_key=platform_key,
        ),
        *shared_routes(
            title="WeChat Pay",
            book=book,
            dispatcher=dispatcher,
            on_approve=notify_paid,
            on_decline=on_decline,
        ),
    ]
    return sandbox_app(handlers, dispatcher=dispatcher, book=book, keys=keys)
