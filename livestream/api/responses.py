"""Response shapes of the live API, for the OpenAPI document. Handlers return the dicts that
`usecases.session_view` and `engine.commands.deal_view` build; the API contract test
(tests/integration/test_api_contract.py) checks real answers against these shapes."""

from __future__ import annotations

from commerce.api.responses import Order, Out


class Coupon(Out):
    id: str
    amount_fen: int | None
    percent_off: int | None
    quantity: int
    per_buyer_limit: int
    left: int  # uses left: held by unpaid orders or taken by paid ones are not
    issued_at: str | None


class Pin(Out):
    product_id: str
    pinned_at: str | None
    unpinned_at: str | None


class Session(Out):
    id: str
    host_merchant_id: str
    creator_id: str | None
    title: str
    state: str  # scheduled | live | ended | cancelled
    starts_at: str | None
    started_at: str | None
    finished_at: str | None
    pinned: list[str]
    coupons: list[Coupon]
    pins: list[Pin]


class Sessions(Out):
    items: list[Session]


class Moderators(Out):
    session_id: str
    moderators: list[str]


class Deal(Out):
    id: str
    session_id: str
    merchant_id: str
    sku: str
    warehouse_id: str
    price_fen: int
    quantity: int
    per_buyer_limit: int
    phase: str  # counting_down | open | closed
    opens_at: str
    ends_at: str
    units_left: int
    units_paid: int
    payment_window_seconds: int
    closed_at: str | None
    close_reason: str | None


class Deals(Out):
    items: list[Deal]


class Claim(Out):
    """A buyer's claim, the deal as it stood then, and the order placed from it."""

    id: str
    deal_id: str
    quantity: int
    pay_by: str  # when the order must be paid
    held_until: str  # the unit stays the buyer's until then (pay_by plus a grace)
    state: str  # placing | placed | refused | released
    reason: str | None  # why the order was refused
    order_id: str  # the order's id, known before it is placed
    order: Order | None  # once placed
    deal: Deal
