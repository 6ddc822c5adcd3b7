"""Routes both sandbox gateways share: the simulated buyer and the test control panel.

The buyer page stands in for the phone that scans the QR code: it shows the trade and offers
approve/decline, so a developer can click through a payment and a test can POST the same form.
The ``/_sandbox/switches`` and ``/_sandbox/deliveries`` endpoints let tests inject failures and
observe what was sent, over HTTP, exactly as they would against a separate process.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from litestar import Litestar, Response, get, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from payments.sandbox.ledger import LedgerError, SandboxTrade, TradeBook, TradeState
from payments.sandbox.notifier import NotificationDispatcher

TradeHook = Callable[[SandboxTrade], None]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} sandbox payment</title></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>{title} sandbox</h1>
<p>{subject}</p>
<p><strong>{amount} {currency}</strong> &middot; trade <code>{out_trade_no}</code></p>
<p>Status: <strong>{state}</strong></p>
{forms}
</body></html>
"""

_FORMS = """<form method="post" action="/_sandbox/pay/{out_trade_no}/approve">
<button type="submit">Approve payment</button></form>
<form method="post" action="/_sandbox/pay/{out_trade_no}/decline">
<button type="submit">Decline</button></form>"""


def _format_minor(amount_minor: int) -> str:
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def shared_routes(
    *,
    title: str,
    book: TradeBook,
    dispatcher: NotificationDispatcher,
    on_approve: TradeHook,
    on_decline: TradeHook,
) -> list[HTTPRouteHandler]:
    def error(exc: LedgerError) -> Response[dict[str, str]]:
        status = 404 if exc.code == "TRADE_NOT_EXIST" else 409
        return Response({"code": exc.code, "message": exc.message}, status_code=status)

    @get("/_sandbox/pay/{out_trade_no:str}", media_type="text/html", sync_to_thread=False)
    def buyer_page(out_trade_no: FromPath[str]) -> Response[str]:
        try:
            trade = book.get(out_trade_no)
        except LedgerError:
            return Response("<h1>No such trade</h1>", status_code=404, media_type="text/html")
        safe_no = html.escape(trade.out_trade_no)
        forms = _FORMS.format(out_trade_no=safe_no) if trade.state is TradeState.PENDING else ""
        return Response(
            _PAGE.format(
                title=html.escape(title),
                subject=html.escape(trade.subject),
                amount=_format_minor(trade.amount_minor),
                currency=html.escape(trade.currency),
                out_trade_no=safe_no,
                state=trade.state.value,
                forms=forms,
            ),
            media_type="text/html",
        )

    @post("/_sandbox/pay/{out_trade_no:str}/approve", status_code=200, sync_to_thread=False)
    def approve(out_trade_no: FromPath[str]) -> Response[dict[str, str]]:
        try:
            trade = book.approve(out_trade_no)
        except LedgerError as exc:
            return error(exc)
        on_approve(trade)
        return Response({"out_trade_no": out_trade_no, "state": trade.state.value})

    @post("/_sandbox/pay/{out_trade_no:str}/decline", status_code=200, sync_to_thread=False)
    def decline(out_trade_no: FromPath[str]) -> Response[dict[str, str]]:
        try:
            trade = book.decline(out_trade_no)
        except LedgerError as exc:
            return error(exc)
        on_decline(trade)
        return Response({"out_trade_no": out_trade_no, "state": trade.state.value})

    @get("/_sandbox/switches", sync_to_thread=False)
    def read_switches() -> dict[str, Any]:
        return dispatcher.switches.as_dict()

    @put("/_sandbox/switches", sync_to_thread=False)
    def write_switches(data: JSONBody[dict[str, Any]]) -> Response[dict[str, Any]]:
        try:
            dispatcher.switches.update(data)
        except (ValueError, TypeError) as exc:
            return Response({"code": "BAD_SWITCH", "message": str(exc)}, status_code=400)
        if not dispatcher.switches.out_of_order:
            dispatcher.release_held()
        return Response(dispatcher.switches.as_dict())

    @get("/_sandbox/deliveries", sync_to_thread=False)
    def deliveries() -> list[dict[str, Any]]:
        return [
            {
                "notice_id": attempt.notice_id,
                "attempt": attempt.attempt,
                "status_code": attempt.status_code,
                "acknowledged": attempt.acknowledged,
                "at": attempt.at,
            }
            for attempt in dispatcher.deliveries
        ]

    return [buyer_page, approve, decline, read_switches, write_switches, deliveries]


def sandbox_app(handlers: list, *, dispatcher: Any, book: Any, keys: Any) -> Litestar:
    """A sandbox gateway's app: its routes, the notification dispatcher's lifecycle, and the
    state tests reach for (dispatcher, trade book, keys)."""
    app = Litestar(
        route_handlers=handlers,
        on_startup=[dispatcher.start],
        on_shutdown=[dispatcher.stop],
        debug=False,
    )
    app.state.dispatcher = dispatcher
    app.state.book = book
    app.state.keys = keys
    return app
