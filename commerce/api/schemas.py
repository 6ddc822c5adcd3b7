"""Request bodies. Types and unknown fields are checked here (400); business rules in the domain
(422), so the same rules hold for every entrypoint, not just HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta

Text = Annotated[str, Meta(max_length=1000)]
Code2 = Annotated[str, Meta(min_length=2, max_length=2)]
Code3 = Annotated[str, Meta(min_length=3, max_length=3)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class OnboardMerchant(Strict):
    name: Text
    home_country: Code2
    settlement_currency: Code3


class SetFxRate(Strict):
    cny_per_unit: Decimal


class OpenWarehouse(Strict):
    name: Text
    kind: Text
    country: Code2
    address: Text


class ListProduct(Strict):
    sku: Text
    title: Text
    brand: Text
    origin_country: Code2
    hs_code: Text
    category: Text
    list_price_minor: int
    weight_grams: int
    vat_rate: Decimal = Decimal("0.13")
    consumption_tax_rate: Decimal = Decimal("0")


class ReviseProduct(Strict):
    title: Text | None = None
    brand: Text | None = None
    category: Text | None = None
    hs_code: Text | None = None
    list_price_minor: int | None = None
    vat_rate: Decimal | None = None
    consumption_tax_rate: Decimal | None = None
    weight_grams: int | None = None


class ReceiveStock(Strict):
    quantity: int


class AdjustStock(Strict):
    delta: int
    reason: Text


class SignUpBuyer(Strict):
    display_name: Text


class OrderLine(Strict):
    sku: Text
    quantity: int


class Identity(Strict):
    name: Text
    resident_id: Text


class Address(Strict):
    recipient: Text
    mobile: Text
    province: Text
    city: Text
    district: Text
    street: Text
    postcode: Text


class CouponRef(Strict):
    session_id: Text
    coupon_id: Text


class PlaceOrder(Strict):
    merchant_id: Text
    lines: Annotated[list[OrderLine], Meta(max_length=100)]
    identity: Identity
    address: Address
    # Pay with this provider: the payment is requested as soon as the order is placed, and
    # GET /orders/{id}/payments shows its QR code or redirect.
    payment_provider: Annotated[str, Meta(max_length=32)] | None = None
    # A creator's promo code (any case): its percent comes off the goods before tax.
    promo_code: Annotated[str, Meta(max_length=64)] | None = None
    # A coupon issued in a live session (its id from the room's coupon.issued): its amount or
    # percent comes off the goods before tax. An order takes a promo code or a coupon.
    coupon: CouponRef | None = None


class CancelOrder(Strict):
    reason: Text = ""


class MarkPaid(Strict):
    payment_ref: Text
    amount_fen: int


class DeclareCustoms(Strict):
    declaration_ref: Text


class RejectCustoms(Strict):
    reason: Text


class ShipOrder(Strict):
    carrier: Text
    tracking_no: Text


class RefundOrder(Strict):
    refund_ref: Text
    amount_fen: int
    reason: Text = ""
