"""The payment process manager: follows the order side's events and moves money to match.

- an order cancelled or expired before payment → its open payments are closed at the gateway;
- a receipt that came too late (order expired, cancelled or paid by another payment) → that
  payment is refunded in full, automatically;
- an order refund recorded by the merchant → the money goes back through the gateway.

Side effects on gateways are at-least-once, made safe by deterministic keys (out_trade_no,
out_refund_no) that the providers de-duplicate; the position advances only after an event's
effects are done. Across processes, one holds the lease (a PostgreSQL advisory lock).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from litestar.concurrency import sync_to_thread

from payments.api import request_payment, trade_no
from payments.port import PaymentGatewayError, RefundPayment, out_refund_no_for
from payments.records import Payment, gateway_ref
from payments.runtime import PaymentsRuntime
from projections.follow import follow_forever
from projections.sqlstore import SqlStore

log = logging.getLogger("redcart.payments.process")
NAME = "payments_process"
TOPICS = (
    "commerce.Order.Placed",
    "commerce.Order.Paid",
    "commerce.Order.Cancelled",
    "commerce.Order.Expired",
    "commerce.Order.Refunded",
    "commerce.PaymentReceipt.Recorded",
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS projection_tracking (name TEXT PRIMARY KEY, position BIGINT"
    " NOT NULL)",
    "CREATE TABLE IF NOT EXISTS payment_of_order (order_id TEXT PRIMARY KEY, out_trade_no"
    " TEXT NOT NULL)",
)


def migrate(store: SqlStore) -> None:
    with store.transaction() as cur:
        for ddl in SCHEMA:
            cur.execute(ddl)
        cur.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (%s, 0)"
            " ON CONFLICT (name) DO NOTHING",
            (NAME,),
        )


class PaymentProcess:
    def __init__(
        self, source: Application, store: SqlStore, payments: PaymentsRuntime,
        lease: Callable[[], bool] = lambda: True, poll_interval: float = 0.5,
        min_interval: float = 0.2,
    ) -> None:  # fmt: skip
        self.source, self.store, self.payments = source, store, payments
        self.lease, self.poll_interval, self.min_interval = lease, poll_interval, min_interval
        self.wake = asyncio.Event()
        self._batch_payments: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Wake the manager from any thread (the writer calls this after each commit)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake.set)

    def _position(self) -> int:
        rows = self.store.query("SELECT position FROM projection_tracking WHERE name = %s", (NAME,))
        return int(rows[0][0]) if rows else 0

    def _advance(self, position: int, order_payments: list[tuple[str, str]]) -> None:
        with self.store.transaction() as cur:
            for row in order_payments:
                cur.execute(
                    "INSERT INTO payment_of_order (order_id, out_trade_no) VALUES (%s, %s)"
                    " ON CONFLICT (order_id) DO NOTHING",
                    row,
                )
            cur.execute(
                "UPDATE projection_tracking SET position = %s WHERE name = %s", (position, NAME)
            )

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Commits come in bursts of dozens a second under load; gateway calls need no
        # millisecond latency, so look at most a few times a second.
        await follow_forever(
            self.catch_up, self.lease, self.wake, log,
            poll_interval=self.poll_interval, retry_after=2, min_interval=self.min_interval,
        )  # fmt: skip

    async def catch_up(self) -> int:
        done = 0
        while True:
            start = await sync_to_thread(self._position)
            notes = await sync_to_thread(
                self.source.recorder.select_notifications, start, 100, None, TOPICS,
                inclusive_of_start=False,
            )  # fmt: skip
            if not notes:
                return done
            done_up_to, rows = start, []
            self._batch_payments: dict[str, str] = {}  # Paid in this batch, not yet written
            try:
                for note in notes:
                    event = self.source.mapper.to_domain_event(note)
                    order_payment = await self.handle(event)
                    if order_payment:
                        rows.append(order_payment)
                        self._batch_payments[order_payment[0]] = order_payment[1]
                    done_up_to = note.id
                    done += 1
            finally:  # one tracking commit per batch; effects are idempotent if redone
                if done_up_to > start:
                    await sync_to_thread(self._advance, done_up_to, rows)

    async def handle(self, event: Any) -> tuple[str, str] | None:
        kind = type(event).__name__
        if kind == "Placed" and getattr(event, "payment_provider", None):
            await self._request(event)
        elif kind == "Paid":
            return (str(event.originator_id), event.payment_ref)
        if kind in ("Cancelled", "Expired"):
            await self._close_open_payments(event.originator_id, kind.lower())
        elif kind == "Recorded" and getattr(event, "outcome", None) == "refund_due":
            await self._refund(event.payment_ref, None, "order was no longer payable")
        elif kind == "Refunded":
            out_trade_no = self._batch_payments.get(str(event.originator_id))
            if out_trade_no is None:
                rows = await sync_to_thread(
                    self.store.query,
                    "SELECT out_trade_no FROM payment_of_order WHERE order_id = %s",
                    (str(event.originator_id),),
                )
                out_trade_no = rows[0][0] if rows else None
            if out_trade_no:
                await self._refund(out_trade_no, (event.refund_ref, event.amount_fen), event.reason)
        return None

    async def _request(self, placed: Any) -> None:
        """Order placed with a provider chosen → payment requested at that gateway."""
        provider = placed.payment_provider
        if provider not in self.payments.gateways:
            log.warning("order %s asks for unknown provider %s", placed.originator_id, provider)
            return
        if placed.expires_at <= datetime.now(UTC):
            return  # too late to ask for money
        titles = ", ".join(line["title"] for line in placed.lines)
        try:
            await request_payment(
                self.payments, placed.originator_id, provider, int(placed.quote["total_fen"]),
                f"redcart order: {titles}"[:120],
            )  # fmt: skip
        except PaymentGatewayError as exc:  # the buyer can still start it by hand
            log.warning("payment request for %s refused: %s", placed.originator_id, exc)

    async def _close_open_payments(self, order_id: UUID, why: str) -> None:
        for provider, gateway in self.payments.gateways.items():
            out_trade_no = trade_no(order_id, provider)
            payment = await self.payments.payment(out_trade_no)
            if payment is None or payment.status != "pending":
                continue
            try:
                await gateway.close_payment(gateway_ref(payment))
            except PaymentGatewayError as exc:  # never scanned, already closed: nothing to close
                log.info("close %s: %s", out_trade_no, exc)
            await self.payments.update(out_trade_no, lambda p: _close(p, f"order {why}"))

    async def _refund(self, out_trade_no: str, partial: tuple[str, int] | None, why: str) -> None:
        payment = await self.payments.payment(out_trade_no)
        if payment is None:
            log.warning("refund for unknown payment %s skipped", out_trade_no)
            return
        ref, amount = partial or ("full", payment.amount_fen)
        seq = int(hashlib.sha256(ref.encode()).hexdigest()[:8], 16)
        out_refund_no = out_refund_no_for(out_trade_no, seq)
        if out_refund_no in payment.refunds:
            return
        gateway = self.payments.gateways[payment.provider]
        await gateway.refund(
            RefundPayment(
                out_trade_no=gateway_ref(payment),
                out_refund_no=out_refund_no,
                refund_minor=amount,
                payment_total_minor=payment.amount_fen,
                currency=payment.currency,
                reason=why,
            )
        )
        await self.payments.update(out_trade_no, lambda p: _refunded(p, out_refund_no, amount, why))


def _close(payment: Payment, reason: str) -> bool:
    if payment.status != "pending":
        return False
    payment.close(reason)
    return True


def _refunded(payment: Payment, out_refund_no: str, amount: int, why: str) -> bool:
    if out_refund_no in payment.refunds:
        return False
    payment.refund(out_refund_no, amount, why)
    return True
