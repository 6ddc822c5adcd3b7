"""WeChat Pay Global customs declaration and trade-bill endpoints of the sandbox.

Customs: ``/v3/global/customs/orders`` records the payment leg of the three-document match and
``verify-certificate`` compares the (RSA-OAEP encrypted) buyer identity with the registered payer;
the certificate number ``MISMATCHED_CERT_NO`` plays a payer who is somebody else.
Bills: ``/v3/bill/tradebill`` hands out a download URL for a backtick-prefixed CSV, WeChat style.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler

from payments.sandbox.ledger import LedgerError, TradeBook, TradeState, rows_to_csv
from payments.sandbox.wechatpay_wire import SandboxSigner

MISMATCHED_CERT_NO = "110101199003070003"  # plays "registered payer is somebody else"

Guard = Callable[[Request], Awaitable[tuple[dict[str, Any], Response[bytes] | None]]]


def customs_and_bill_routes(
    *,
    book: TradeBook,
    signer: SandboxSigner,
    guarded: Guard,
    ledger_error: Callable[[LedgerError], Response[bytes]],
    appid: str,
    mchid: str,
    platform_key: RSAPrivateKey,
) -> list[HTTPRouteHandler]:
    declarations: dict[tuple[str, str], dict[str, Any]] = {}
    bills: dict[str, str] = {}

    @post("/v3/global/customs/orders")
    async def declare(request: Request) -> Response[bytes]:
        data, denied = await guarded(request)
        if denied:
            return denied
        try:
            trade = book.get(data["out_trade_no"])
            if trade.state is not TradeState.PAID:
                raise LedgerError("TRADE_NOT_PAID", "only paid orders can be declared")
            sub_order_no = data.get("sub_order_no") or ""
            record = declarations.setdefault(
                (trade.out_trade_no, sub_order_no),
                {
                    "appid": appid,
                    "mchid": mchid,
                    "out_trade_no": trade.out_trade_no,
                    "transaction_id": trade.provider_ref,
                    "customs": data["customs"],
                    "merchant_customs_no": data["merchant_customs_no"],
                    "sub_order_no": sub_order_no,
                    "sub_order_id": book.next_ref(),
                    "state": "PROCESSING",
                    "cert_check_result": "UNCHECKED",
                    "verify_department": "OTHERS",
                    "verify_department_trade_id": trade.provider_ref,
                },
            )
        except KeyError as exc:
            return signer.error(400, "PARAM_ERROR", f"missing {exc}")
        except LedgerError as exc:
            return ledger_error(exc)
        return signer.respond(record)

    @post("/v3/global/customs/verify-certificate")
    async def verify_certificate(request: Request) -> Response[bytes]:
        data, denied = await guarded(request)
        if denied:
            return denied
        if request.headers.get("wechatpay-serial") != signer.key_id:
            return signer.error(400, "PARAM_ERROR", "Wechatpay-Serial must name the platform key")
        record = declarations.get((data.get("out_trade_no", ""), data.get("sub_order_no") or ""))
        if record is None:
            return signer.error(404, "ORDER_NOT_EXIST", "declare the order first")
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
        try:
            cert_no = platform_key.decrypt(base64.b64decode(data["certificate_id"]), oaep)
            platform_key.decrypt(base64.b64decode(data["certificate_name"]), oaep)
        except (KeyError, ValueError):
            return signer.error(400, "PARAM_ERROR", "certificate fields must be encrypted")
        result = "DIFFERENT" if cert_no.decode() == MISMATCHED_CERT_NO else "SAME"
        record["cert_check_result"] = result
        return signer.respond(
            {
                **{
                    k: record[k]
                    for k in ("out_trade_no", "transaction_id", "sub_order_no", "sub_order_id")
                },
                "verify_result": result,
            }
        )

    @get("/v3/bill/tradebill")
    async def trade_bill(request: Request) -> Response[bytes]:
        _, denied = await guarded(request)
        if denied:
            return denied
        bill_date = request.query_params.get("bill_date", "")
        token = secrets.token_urlsafe(12)
        bills[token] = bill_date
        content = render_bill(bill_date).encode()
        base = str(request.base_url).rstrip("/")
        return signer.respond(
            {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(content).hexdigest(),  # noqa: S324
                "download_url": f"{base}/v3/billdownload/file?token={token}",
            }
        )

    @get("/v3/billdownload/file", media_type="text/plain")
    async def download_bill(request: Request) -> Response[bytes]:
        _, denied = await guarded(request)
        if denied:
            return denied
        bill_date = bills.get(request.query_params.get("token", ""))
        if bill_date is None:
            return signer.error(404, "RESOURCE_NOT_EXISTS", "unknown bill token")
        return Response(render_bill(bill_date).encode(), media_type="text/plain")

    def render_bill(bill_date: str) -> str:
        """WeChat trade bill style: every value prefixed with a backtick, fen shown as yuan."""

        def tick(key: str) -> Any:
            return lambda row: f"`{row[key]}"

        def yuan(row: dict[str, Any]) -> str:
            fen = abs(row["amount_minor"])
            return f"`{fen // 100}.{fen % 100:02d}"

        columns = [
            ("交易时间", tick("time")),
            ("商户号", lambda _: f"`{mchid}"),
            ("微信订单号/退款单号", tick("provider_ref")),
            ("商户订单号", tick("out_trade_no")),
            ("交易状态", lambda r: "`SUCCESS" if r["type"] == "PAYMENT" else "`REFUND"),
            ("商户退款单号", tick("out_refund_no")),
            ("金额", yuan),
            ("货币种类", tick("currency")),
            ("商品名称", tick("subject")),
        ]
        return rows_to_csv(book.bill_rows(bill_date), columns)

    return [declare, verify_certificate, trade_bill, download_bill]
