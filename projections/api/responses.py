"""Response shapes of the read side, for the OpenAPI document. The handlers render dicts (a
product page is encoded once and reused); the API contract test
(tests/integration/test_api_contract.py) checks real answers against these shapes."""

from __future__ import annotations

from typing import Any

from commerce.api.responses import NoteCounts, Out


class LandedPrice(Out):
    """One unit delivered to a mainland buyer, in CNY fen, import tax included."""

    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int


class PageProduct(Out):
    id: str
    merchant_id: str
    merchant_name: str
    sku: str
    title: str
    brand: str
    category: str
    origin_country: str
    hs_code: str
    list_price_minor: int
    currency: str
    weight_grams: int


class CrossBorder(Out):
    mode: str  # bonded | direct_mail
    customs_mode: str  # 1210 (bonded) | 9610 (direct mail)
    label: str


class Delivery(Out):
    min_days: int
    max_days: int
    earliest: str
    latest: str


class PageWarehouse(Out):
    warehouse_id: str
    name: str
    kind: str
    customs_mode: str
    country: str
    available: int
    delivery: Delivery
    landed_price: LandedPrice | None  # None until an FX rate for the list currency is set


class ListPrice(Out):
    amount_minor: int
    currency: str


class PageOffer(Out):
    product_id: str
    merchant_id: str
    merchant_name: str
    title: str
    list_price: ListPrice
    in_stock: bool
    ships_from: str | None
    available: int
    landed_price: LandedPrice | None


class PageNote(Out):
    id: str
    author_id: str
    title: str
    posted_at: str | None
    counts: NoteCounts
    verified_buyer: bool
    score: float


class Rating(Out):
    count: int
    histogram: list[int]  # reviews with 1, 2, 3, 4 and 5 stars
    average: float | None
    wilson_lower_bound: float
    stars_lower_bound: float | None


class PageSession(Out):
    id: str
    title: str
    state: str
    host_merchant_id: str
    starts_at: str | None
    started_at: str | None
    pinned: list[str]


class PageSessions(Out):
    featuring_now: list[PageSession]
    from_this_merchant: list[PageSession]


class ProductPage(Out):
    product: PageProduct
    cross_border: CrossBorder | None
    landed_price: LandedPrice | None
    available: int
    warehouses: list[PageWarehouse]
    offers: list[PageOffer]
    notes: list[PageNote]
    rating: Rating
    live_sessions: PageSessions
    units_sold: int
    as_of: str


class SearchHit(Out):
    kind: str  # product | note
    id: str
    title: str
    relevance: float
    engagement: float


class SearchPage(Out):
    items: list[SearchHit]
    next_cursor: str | None


class Trending(Out):
    kind: str
    id: str
    title: str
    score: float


class TrendingFeed(Out):
    items: list[Trending]
    score_version: str  # names the weights the scores were computed with
    half_life_hours: float
    as_of: str


class ListedNote(Out):
    id: str
    author_id: str
    title: str
    hashtags: list[str]
    cover: str | None
    product_ids: list[str]
    posted_at: str
    counts: NoteCounts


class NoteList(Out):
    items: list[ListedNote]
    next_cursor: str | None


class Verdict(Out):
    """Why one touchpoint won or lost (`why`, in a sentence)."""

    touchpoint_id: str
    kind: str
    creator_id: str
    source_id: str
    at: str
    outcome: str
    window_seconds: float | None
    beaten_by: str | None
    share_fen: int
    rate_bp: int
    commission_fen: int
    detail: str | None
    why: str


class Policy(Out):
    version: str | None
    model: str | None
    click_window_seconds: float | None
    view_window_seconds: float | None
    refund_window_seconds: float | None
    lock_rule: str


class AttributedAmounts(Out):
    total_fen: int
    tax_fen: int
    commissionable_fen: int
    refunded_fen: int


class Commission(Out):
    order_id: str
    creator_id: str
    merchant_id: str
    state: str  # pending | locked | payable | reversed
    amount_fen: int
    original_fen: int
    base_fen: int
    refunded_base_fen: int
    rule: str
    paid_at: str | None
    lock_at: str | None
    payable_at: str | None
    adjustments: list[dict[str, Any]]


class Attribution(Out):
    order_id: str
    merchant_id: str
    status: str
    placed_at: str | None
    rule: str
    summary: str
    policy: Policy
    amounts: AttributedAmounts
    winners: list[Verdict]
    touchpoints: list[Verdict]
    ignored: list[dict[str, Any]]
    self_referral_creators: list[str]
    commissions: list[Commission]


class StateTotal(Out):
    count: int
    amount_fen: int


class Commissions(Out):
    creator_id: str
    display_name: str
    totals: dict[str, StateTotal]  # by state
    items: list[Commission]
    next_cursor: str | None
