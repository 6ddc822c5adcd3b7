"""Response shapes of the payment API, for the OpenAPI document (checked against real answers
by tests/integration/test_api_contract.py)."""

from __future__ import annotations

from typing import Any

from commerce.api.responses import Out


class Payment(Out):
    payment_id: str
    order_id: str
    provider: str  # alipay | wechatpay | stripe
    method: str
    out_trade_no: str
    amount_fen: int
    currency: str
    status: str
    # what the buyer does next: a QR code to scan or a page to open, as the provider says
    next_action: dict[str, Any]
    sandbox_pay_page: str | None = None  # sandbox only: approve or decline the payment there


class PaymentAttempt(Payment):
    refunded_fen: int = 0
    flags: list[str] = []  # noqa: RUF012 (msgspec copies defaults)


class Payments(Out):
    items: list[PaymentAttempt]
