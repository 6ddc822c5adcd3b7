"""What payment handlers need; built by the composition root (redcart.wiring)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from litestar.concurrency import sync_to_thread

from payments.port import PaymentGateway
from payments.records import Payment, Payments, payment_id

PROVIDER_METHODS = {"alipay": "alipay", "wechatpay": "wechat_pay", "stripe": "card"}


@dataclass
class PaymentsRuntime:
    app: Payments
    gateways: dict[str, PaymentGateway]
    public_url: str  # where providers send notifications: {public_url}/webhooks/{provider}
    # From the order side, passed in so this context never imports its internals:
    order_for_payment: Callable[[UUID, Any], Awaitable[dict]]
    record_payment: Callable[..., Awaitable[dict]]
    payer_identity: Callable[[UUID], Awaitable[tuple[str, str] | None]] | None = None
    file_customs: Callable[..., Awaitable[dict]] | None = None
    sandbox_pages: dict[str, str] = field(default_factory=dict)  # provider -> sandbox base URL

    async def payment(self, out_trade_no: str) -> Payment | None:
        try:
            found = await sync_to_thread(self.app.repository.get, payment_id(out_trade_no))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Payment) else None

    async def save(self, payment: Payment) -> None:
        await sync_to_thread(self.app.save, payment)

    async def update(self, out_trade_no: str, change: Callable[[Payment], bool]) -> Payment | None:
        """Apply `change` to the latest state, retrying when another process got there first
        (duplicate notifications race by design)."""
        for _ in range(5):
            payment = await self.payment(out_trade_no)
            if payment is None or not change(payment):
                return payment
            try:
                await self.save(payment)
            except IntegrityError:
                continue
            return payment
        return await self.payment(out_trade_no)

    async def aclose(self) -> None:
        for gateway in self.gateways.values():
            closer = getattr(gateway, "aclose", None)
            if closer:
                await closer()
