"""Response shapes, for the OpenAPI document. Handlers return the dicts that
commerce.representations builds (they are also what idempotency records replay); a test decodes
real answers into these structs so the two cannot drift apart."""

from __future__ import annotations

import msgspec


class Out(msgspec.Struct, forbid_unknown_fields=True):
    """Unknown fields are an error when tests decode real answers: drift shows at once."""


class Merchant(Out):
    id: str
    name: str
    home_country: str
    settlement_currency: str
    warehouse_ids: list[str]
    created_at: str | None


class OnboardedMerchant(Merchant):
    api_key: str  # shown in this answer only; store it now


class DeliveryDays(Out):
    min: int
    max: int


class Warehouse(Out):
    id: str
    merchant_id: str
    name: str
    kind: str
    customs_mode: str
    country: str
    address: str
    delivery_days: DeliveryDays
    created_at: str | None


class Product(Out):
    id: str
    merchant_id: str
    sku: str
    title: str
    brand: str
    origin_country: str
    hs_code: str
    category: str
    list_price_minor: int
    currency: str
    vat_rate: str
    consumption_tax_rate: str
    weight_grams: int
    version: int


class WarehouseStock(Out):
    product_id: str
    sku: str
    warehouse_id: str
    warehouse_kind: str | None
    on_hand: int
    reserved: int
    available: int
    version: int


class ProductStock(Out):
    product_id: str
    sku: str
    warehouses: list[WarehouseStock]
    available: int


class FxRate(Out):
    currency: str
    cny_per_unit: str
    updated_at: str | None


class Buyer(Out):
    id: str
    display_name: str
    token: str  # shown in this answer only


class Allocation(Out):
    warehouse_id: str
    quantity: int


class OrderedLine(Out):
    sku: str
    product_id: str
    title: str
    quantity: int
    unit_price_minor: int
    currency: str
    allocations: list[Allocation]


class QuotedLine(Out):
    sku: str
    quantity: int
    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int


class QuotedShipment(Out):
    warehouse_id: str
    mode: str
    customs_mode: str
    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int
    lines: list[QuotedLine]


class Quote(Out):
    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int
    dutiable_fen: int
    shipments: list[QuotedShipment]
    discount_fen: int = 0  # off the goods (promo code or live coupon); goods_fen is after it


class MaskedIdentity(Out):
    name: str
    resident_id: str


class StatusChange(Out):
    status: str
    at: str | None


class Order(Out):
    id: str
    merchant_id: str
    buyer_id: str
    status: str
    lines: list[OrderedLine]
    quote: Quote
    total_fen: int
    currency: str
    identity: MaskedIdentity
    address: dict[str, str]
    fx_rates: dict[str, str]
    placed_at: str | None
    pay_before: str | None
    payment_ref: str | None
    paid_at: str | None
    customs: dict[str, str]
    shipment: dict[str, str]
    refunded_fen: int
    attribution: dict | None
    coupon_id: str | None
    payment_provider: str | None
    history: list[StatusChange]
    version: int


class OrderSummary(Out):
    id: str
    merchant_id: str
    buyer_id: str
    status: str
    total_fen: int
    placed_at: str
    pay_before: str
    lines: list[dict]


class OrderPage(Out):
    items: list[OrderSummary]
    next_cursor: str | None


class Page(Out):
    items: list[dict]
    next_cursor: str | None


# -- notes, creators, referrals (commerce.api.social, commerce.api.referrals) -----------------
class NoteCounts(Out):
    views: int
    likes: int
    saves: int
    shares: int
    comments: int


class Note(Out):
    id: str
    author_id: str
    title: str
    body: str
    image_refs: list[str]
    product_ids: list[str]
    hashtags: list[str]
    counts: NoteCounts
    posted_at: str | None
    edited_at: str | None
    version: int


class Engagement(Out):
    note_id: str
    counts: NoteCounts


class Liked(Engagement):
    liked: bool


class Saved(Engagement):
    saved: bool


class MyEngagement(Out):
    liked: bool
    saved: bool


class Comment(Out):
    id: str
    note_id: str
    author_id: str
    text: str
    at: str | None


class CommentPage(Out):
    items: list[Comment]
    next_cursor: str | None


class Touchpoint(Out):
    id: str
    kind: str
    creator_id: str  # "" when no creator is behind it
    source_id: str
    product_id: str | None
    at: str


class CreatorLink(Out):
    merchant_id: str
    commission_rate_bp: int


class Creator(Out):
    id: str
    user_id: str
    display_name: str
    identity_registered: bool
    merchants: list[CreatorLink]


class ReferralLink(Out):
    code: str
    creator_id: str
    merchant_id: str
    product_id: str | None
    commission_rate_bp: int
    valid_from: str | None
    valid_until: str | None
    revoked_at: str | None
    usable: bool
    url: str


class PromoCode(Out):
    code: str
    creator_id: str
    merchant_id: str
    percent_off: int
    commission_rate_bp: int
    valid_from: str | None
    valid_until: str | None
    revoked_at: str | None
    usable: bool


class Referral(Out):
    code: str
    merchant_id: str
    product_id: str | None
    creator_id: str
    touchpoint_id: str | None  # set when a signed-in buyer followed it
