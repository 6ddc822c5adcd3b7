"""Request bodies. Types and unknown fields are checked here (400); business rules in the domain
(422), so the same rules hold for every entrypoint, not just HTTP. `rule(...)` shows a domain
rule in the OpenAPI document without checking it a second time here."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import Meta


def rule(**schema: Any) -> Meta:
    """JSON Schema keywords for the OpenAPI document (Litestar reads `extra`); not checked when
    decoding, because the domain checks them and answers 422 naming the field."""
    return Meta(extra_json_schema={"extra": schema})


Text = Annotated[str, Meta(max_length=1000)]
Code2 = Annotated[str, Meta(min_length=2, max_length=2)]
Code3 = Annotated[str, Meta(min_length=3, max_length=3)]
Uuid = Annotated[str, Meta(max_length=100), rule(format="uuid")]
Name = Annotated[str, Meta(max_length=1000), rule(min_length=1, max_length=200)]
Country = Annotated[str, Meta(min_length=2, max_length=2), rule(pattern="^[A-Z]{2}$")]
Currency = Annotated[str, Meta(min_length=3, max_length=3), rule(pattern="^[A-Z]{3}$")]
Quantity = Annotated[int, rule(minimum=1, maximum=10_000_000)]
Fen = Annotated[int, rule(minimum=1)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class OnboardMerchant(Strict):
    name: Name
    home_country: Country
    settlement_currency: Currency


class SetFxRate(Strict):
    cny_per_unit: Decimal


class OpenWarehouse(Strict):
    name: Name
    kind: Annotated[str, Meta(max_length=1000), rule(enum=["bonded", "direct_mail"])]
    country: Country
    address: Annotated[str, Meta(max_length=1000), rule(min_length=1, max_length=500)]


Sku = Annotated[str, Meta(max_length=1000), rule(pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Facet = Annotated[str, Meta(max_length=1000), rule(min_length=1, max_length=100)]
HsCode = Annotated[str, Meta(max_length=1000), rule(pattern="^[0-9]{6,10}$")]
Price = Annotated[int, rule(minimum=1, maximum=10**10)]
Grams = Annotated[int, rule(minimum=1, maximum=100_000)]
RATE = {
    "pattern": "^(0(\\.[0-9]+)?|0?\\.[0-9]+)$",
    "minimum": 0,
    "maximum": 0.6,
    "description": "0 to 0.5 (VAT) or 0.6 (consumption tax), as a string or a number",
}
Rate = Annotated[Decimal, rule(type=["string", "number"], **RATE)]
RateOrNone = Annotated[Decimal | None, rule(type=["string", "number", "null"], one_of=None, **RATE)]


class ListProduct(Strict):
    sku: Sku
    title: Name
    brand: Facet
    origin_country: Country
    hs_code: HsCode
    category: Facet
    list_price_minor: Price
    weight_grams: Grams
    vat_rate: Rate = Decimal("0.13")
    consumption_tax_rate: Rate = Decimal("0")


class ReviseProduct(Strict):
    title: Name | None = None
    brand: Facet | None = None
    category: Facet | None = None
    hs_code: HsCode | None = None
    list_price_minor: Price | None = None
    vat_rate: RateOrNone = None
    consumption_tax_rate: RateOrNone = None
    weight_grams: Grams | None = None


class ReceiveStock(Strict):
    quantity: Quantity


class AdjustStock(Strict):
    delta: int
    reason: Text


class SignUpBuyer(Strict):
    display_name: Annotated[str, Meta(max_length=1000), rule(min_length=1, max_length=64)]


class OrderLine(Strict):
    sku: Sku
    quantity: Annotated[int, rule(minimum=1)]


class Identity(Strict):
    name: Text
    resident_id: Annotated[
        str,
        Meta(max_length=1000),
        rule(
            pattern="^[0-9]{17}[0-9Xx]$",
            description="the PRC "
            "resident ID number (checked with its check digit); hashed, never stored in events",
        ),
    ]


class Address(Strict):
    recipient: Text
    mobile: Annotated[str, Meta(max_length=1000), rule(pattern="^1[3-9][0-9]{9}$")]
    province: Text
    city: Text
    district: Text
    street: Text
    postcode: Annotated[str, Meta(max_length=1000), rule(pattern="^[0-9]{6}$")]


class CouponRef(Strict):
    session_id: Uuid
    coupon_id: Uuid


class PlaceOrder(Strict):
    merchant_id: Uuid
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
