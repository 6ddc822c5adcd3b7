"""Alipay OpenAPI sandbox gateway (``/gateway.do``) as a Litestar app.

It verifies RSA2 request signatures with the merchant public key, answers with responses signed
over the exact ``*_response`` JSON text, and posts signed ``trade_status_sync`` notifications to
the trade's ``notify_url`` until the merchant answers exactly ``success``. Third-party merchant
SDKs (python-alipay-sdk) run against it unchanged apart from the gateway URL.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get, route
from litestar.params import FromPath
from litestar.response import Redirect

from payments.adapters.alipay import (
    BEIJING,
    TIMESTAMP_FORMAT,
    minor_to_yuan,
    signing_string,
    yuan_to_minor,
)
from payments.sandbox.common import sandbox_app, shared_routes
from payments.sandbox.keys import load_or_create_keys
from payments.sandbox.ledger import LedgerError, SandboxTrade, TradeBook, TradeState, rows_to_csv
from payments.sandbox.notifier import (
    ALIPAY_RETRY_INTERVALS,
    NotificationDispatcher,
    SandboxSwitches,
)
from payments.signing import (
    load_private_key,
    load_public_key,
    sign_sha256_rsa,
    verify_sha256_rsa,
)

TRADE_STATUS = {
    TradeState.PENDING: "WAIT_BUYER_PAY",
    TradeState.DECLINED: "WAIT_BUYER_PAY",  # the buyer may still pay until the trade closes
    TradeState.PAID: "TRADE_SUCCESS",
    TradeState.CLOSED: "TRADE_CLOSED",
}
SUB_CODES = {
    "TRADE_NOT_EXIST": "ACQ.TRADE_NOT_EXIST",
    "TRADE_NOT_PENDING": "ACQ.TRADE_HAS_SUCCESS",
    "OUT_TRADE_NO_USED": "ACQ.CONTEXT_INCONSISTENT",
    "TRADE_PAID": "ACQ.TRADE_STATUS_ERROR",
    "TRADE_NOT_PAID": "ACQ.TRADE_STATUS_ERROR",
    "REFUND_AMT_EXCEEDED": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    "REFUND_NO_USED": "ACQ.CONTEXT_INCONSISTENT",
}


def trade_status(trade: SandboxTrade) -> str:
    """A fully refunded trade reads as TRADE_CLOSED, as on the real gateway."""
    if trade.state is TradeState.PAID and trade.refunded_minor == trade.amount_minor:
        return "TRADE_CLOSED"
    return TRADE_STATUS[trade.state]


# Sandbox identity check: this certificate number plays "payer is somebody else".
MISMATCHED_CERT_NO = "110101199003070003"


def _now_text(shift_seconds: int = 0) -> str:
    now = datetime.now(BEIJING).timestamp() - shift_seconds
    return datetime.fromtimestamp(now, BEIJING).strftime(TIMESTAMP_FORMAT)


def _fmt(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, BEIJING).strftime(TIMESTAMP_FORMAT) if epoch else ""


def create_alipay_sandbox(
    key_dir: Path | str,
    *,
    app_id: str = "2021000000000001",
    seller_id: str = "2088000000000001",
    time_scale: float = 1.0,
    retry_intervals: Sequence[float] = ALIPAY_RETRY_INTERVALS,
    switches: SandboxSwitches | None = None,
) -> Litestar:
    keys = load_or_create_keys(key_dir, "alipay")
    gateway_key = load_private_key(keys.gateway_private_key)
    merchant_key = load_public_key(keys.merchant_public_key)
    book = TradeBook("2026")
    bills: dict[str, str] = {}

    def render_notify(payload: dict[str, Any], active: SandboxSwitches) -> tuple[dict, bytes]:
        # Alipay leaves empty fields out of notifications altogether.
        fields = {k: v for k, v in payload.items() if v not in ("", None)}
        fields["notify_time"] = _now_text(active.late_by_seconds)
        signed = signing_string(fields, exclude=("sign", "sign_type")).encode()
        signature = sign_sha256_rsa(gateway_key, signed)
        if active.bad_signature:
            signature = sign_sha256_rsa(gateway_key, signed + b"tampered")
        fields.update(sign_type="RSA2", sign=signature)
        body = urllib.parse.urlencode(fields).encode()
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body

    dispatcher = NotificationDispatcher(
        retry_intervals=retry_intervals,
        time_scale=time_scale,
        render=render_notify,
        is_acknowledged=lambda r: r.status_code == 200 and r.content == b"success",
        switches=switches,
    )

    def notify(trade: SandboxTrade, **refund_fields: str) -> None:
        payload = {
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.provider_ref,
            "out_trade_no": trade.out_trade_no,
            "seller_id": seller_id,
            "buyer_id": "2088102177846880",
            "trade_status": trade_status(trade),
            "total_amount": minor_to_yuan(trade.amount_minor),
            "receipt_amount": minor_to_yuan(trade.amount_minor),
            "buyer_pay_amount": minor_to_yuan(trade.amount_minor),
            "subject": trade.subject,
            "gmt_create": _fmt(trade.created_at),
            "gmt_payment": _fmt(trade.paid_at),
            "gmt_close": _fmt(trade.closed_at),
            **refund_fields,
        }
        dispatcher.emit(payload["notify_id"], trade.notify_url, payload)

    def on_decline(trade: SandboxTrade) -> None:
        """Alipay does not notify a declined attempt; the trade simply stays unpaid."""

    def signed_response(method: str, body: dict[str, Any]) -> Response[bytes]:
        key = "error_response" if method == "" else method.replace(".", "_") + "_response"
        inner = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        signature = sign_sha256_rsa(gateway_key, inner.encode())
        text = f'{{"{key}":{inner},"sign":"{signature}"}}'
        return Response(text.encode(), media_type="application/json;charset=utf-8")

    def failure(code: str, msg: str, sub_code: str, sub_msg: str) -> dict[str, str]:
        return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}

    def handle(method: str, biz: dict[str, Any], params: dict[str, str], base: str) -> dict:
        ok = {"code": "10000", "msg": "Success"}
        if method == "alipay.trade.precreate":
            amount = yuan_to_minor(str(biz["total_amount"]))
            trade = book.create(
                biz["out_trade_no"],
                amount,
                "CNY",
                str(biz.get("subject", "")),
                params.get("notify_url"),
            )
            return {
                **ok,
                "out_trade_no": trade.out_trade_no,
                "qr_code": f"{base}/_sandbox/pay/{trade.out_trade_no}",
            }
        if method == "alipay.trade.query":
            trade = book.get(biz["out_trade_no"])
            return {
                **ok,
                "trade_no": trade.provider_ref,
                "out_trade_no": trade.out_trade_no,
                "trade_status": trade_status(trade),
                "total_amount": minor_to_yuan(trade.amount_minor),
                "buyer_logon_id": "buy***@sandbox.com",
                "send_pay_date": _fmt(trade.paid_at),
            }
        if method == "alipay.trade.close":
            trade = book.close(biz["out_trade_no"])
            return {**ok, "trade_no": trade.provider_ref, "out_trade_no": trade.out_trade_no}
        if method == "alipay.trade.refund":
            request_no = str(biz.get("out_request_no") or biz["out_trade_no"])
            trade, refund, created = book.refund(
                biz["out_trade_no"], request_no, yuan_to_minor(str(biz["refund_amount"]))
            )
            if created:
                notify(
                    trade,
                    out_biz_no=request_no,
                    gmt_refund=_fmt(refund.created_at),
                    refund_fee=minor_to_yuan(trade.refunded_minor),
                )
            return {
                **ok,
                "trade_no": trade.provider_ref,
                "out_trade_no": trade.out_trade_no,
                "fund_change": "Y" if created else "N",
                "buyer_logon_id": "buy***@sandbox.com",
                "refund_fee": minor_to_yuan(trade.refunded_minor),
                "gmt_refund_pay": _fmt(refund.created_at),
            }
        if method == "alipay.trade.customs.declare":
            trade = book.get(biz["out_trade_no"])
            if trade.state is not TradeState.PAID:
                raise LedgerError("TRADE_NOT_PAID", "only paid trades can be declared")
            buyer = biz.get("buyer_info") or {}
            matched = buyer.get("buyer_cert_no") != MISMATCHED_CERT_NO
            return {
                **ok,
                "alipay_declare_no": book.next_ref(),
                "trade_no": trade.provider_ref,
                "identity_check": "T" if matched else "F",
                "pay_code": "31222699S7",
                "pay_transaction_id": trade.provider_ref,
                "total_amount": biz["amount"],
                "currency": "CNY",
                "ver_dept": "1",
            }
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            token = secrets.token_urlsafe(12)
            bills[token] = str(biz["bill_date"])
            return {**ok, "bill_download_url": f"{base}/_sandbox/bills/alipay/{token}.csv"}
        return failure("40004", "Business Failed", "isv.invalid-method", f"unknown {method}")

    @route("/gateway.do", http_method=["GET", "POST"], status_code=200)
    async def gateway(request: Request) -> Response[Any]:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(
                urllib.parse.parse_qsl((await request.body()).decode(), keep_blank_values=True)
            )
        method = params.get("method", "")
        signature = params.get("sign", "")
        if params.get("app_id") != app_id:
            return signed_response(
                method,
                failure("40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数"),
            )
        if params.get("sign_type") != "RSA2" or not verify_sha256_rsa(
            merchant_key, signing_string(params).encode(), signature
        ):
            return signed_response(
                method, failure("40002", "Invalid Arguments", "isv.invalid-signature", "验签出错")
            )
        base = str(request.base_url).rstrip("/")
        try:
            biz = json.loads(params.get("biz_content") or "{}")
            if method in ("alipay.trade.page.pay", "alipay.trade.wap.pay"):
                amount = yuan_to_minor(str(biz["total_amount"]))
                trade = book.create(
                    biz["out_trade_no"],
                    amount,
                    "CNY",
                    str(biz.get("subject", "")),
                    params.get("notify_url"),
                )
                return Redirect(f"{base}/_sandbox/pay/{trade.out_trade_no}")
            return signed_response(method, handle(method, biz, params, base))
        except LedgerError as exc:
            return signed_response(
                method,
                failure("40004", "Business Failed", SUB_CODES.get(exc.code, exc.code), exc.message),
            )
        except (KeyError, ValueError) as exc:
            return signed_response(
                method,
                failure("40002", "Invalid Arguments", "isv.missing-or-invalid-parameter", str(exc)),
            )

    @get("/_sandbox/bills/alipay/{name:str}", media_type="text/csv", sync_to_thread=False)
    def bill(name: FromPath[str]) -> Response[str]:
        bill_date = bills.get(name.removesuffix(".csv"))
        if bill_date is None:
            return Response("unknown bill", status_code=404, media_type="text/plain")
        columns = [
            ("支付宝交易号", "provider_ref"),
            ("商户订单号", "out_trade_no"),
            ("业务类型", lambda r: "交易" if r["type"] == "PAYMENT" else "退款"),
            ("商品名称", "subject"),
            ("完成时间", "time"),
            ("订单金额（元）", lambda r: minor_to_yuan(abs(r["amount_minor"]))),
            ("退款批次号/请求号", "out_refund_no"),
            ("币种", "currency"),
        ]
        return Response(rows_to_csv(book.bill_rows(bill_date), columns), media_type="text/csv")

    handlers = [
        gateway,
        bill,
        *shared_routes(
            title="Alipay",
            book=book,
            dispatcher=dispatcher,
            on_approve=notify,
            on_decline=on_decline,
        ),
    ]
    return sandbox_app(handlers, dispatcher=dispatcher, book=book, keys=keys)
