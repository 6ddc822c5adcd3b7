"""Merchants, their warehouses and their catalogue.

A merchant owns warehouses and products; both carry the owning merchant's id so every edge check
("is this yours?") is one attribute away.
"""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import InvalidInput, NotFound

COUNTRY = re.compile(r"^[A-Z]{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
WAREHOUSE_KINDS = {
    # kind: (customs mode, typical delivery days to a mainland address)
    "bonded": ("1210", (2, 4)),
    "direct_mail": ("9610", (7, 15)),
}


def require_country(value: str, field: str) -> str:
    if not COUNTRY.match(value):
        raise InvalidInput("must be an ISO 3166-1 alpha-2 code such as 'JP'", field=field)
    return value


class Merchant(Aggregate):
    TOPIC = "commerce.Merchant"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Merchant.Created"

    @event("Onboarded", topic="commerce.Merchant.Onboarded")
    def __init__(
        self, name: str, home_country: str, settlement_currency: str, api_key_hash: str
    ) -> None:
        self.name = name
        self.home_country = home_country
        self.settlement_currency = settlement_currency
        self.api_key_hash = api_key_hash
        self.warehouse_ids: list[UUID] = []

    @event("WarehouseRegistered", topic="commerce.Merchant.WarehouseRegistered")
    def register_warehouse(self, warehouse_id: UUID) -> None:
        self.warehouse_ids.append(warehouse_id)

    @event("ApiKeyRotated", topic="commerce.Merchant.ApiKeyRotated")
    def rotate_api_key(self, api_key_hash: str) -> None:
        self.api_key_hash = api_key_hash

    @staticmethod
    def validate(name: str, home_country: str, settlement_currency: str) -> None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("must be 1 to 200 characters", field="name")
        require_country(home_country, "home_country")
        if not CURRENCY.match(settlement_currency) or settlement_currency == "CNY":
            raise InvalidInput(
                "must be an ISO 4217 code of a foreign currency (e.g. 'JPY')",
                field="settlement_currency",
            )


class Warehouse(Aggregate):
    """A stock location. Bonded ones sit inside a Chinese bonded zone (customs mode 1210) and
    deliver in days; direct-mail ones are overseas (mode 9610) and ship each parcel across."""

    TOPIC = "commerce.Warehouse"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Warehouse.Created"

    @event("Opened", topic="commerce.Warehouse.Opened")
    def __init__(self, merchant_id: UUID, name: str, kind: str, country: str, address: str) -> None:
        self.merchant_id = merchant_id
        self.name = name
        self.kind = kind
        self.country = country
        self.address = address

    @property
    def customs_mode(self) -> str:
        return WAREHOUSE_KINDS[self.kind][0]

    @property
    def delivery_days(self) -> tuple[int, int]:
        return WAREHOUSE_KINDS[self.kind][1]

    @staticmethod
    def validate(name: str, kind: str, country: str, address: str) -> None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("must be 1 to 200 characters", field="name")
        if kind not in WAREHOUSE_KINDS:
            raise InvalidInput("must be 'bonded' or 'direct_mail'", field="kind")
        require_country(country, "country")
        if kind == "bonded" and country != "CN":
            raise InvalidInput(
                "a bonded warehouse lies inside a Chinese bonded zone", field="country"
            )
        if kind == "direct_mail" and country == "CN":
            raise InvalidInput("a direct-mail warehouse ships from overseas", field="country")
        if not address.strip() or len(address) > 500:
            raise InvalidInput("must be 1 to 500 characters", field="address")


class Product(Aggregate):
    """A sellable SKU of one merchant, priced in the merchant's settlement currency."""

    TOPIC = "commerce.Product"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Product.Created"

    @event("Listed", topic="commerce.Product.Listed")
    def __init__(
        self,
        merchant_id: UUID,
        sku: str,
        title: str,
        brand: str,
        origin_country: str,
        hs_code: str,
        category: str,
        list_price_minor: int,
        currency: str,
        vat_rate: Decimal,
        consumption_tax_rate: Decimal,
        weight_grams: int,
    ) -> None:
        self.merchant_id = merchant_id
        self.sku = sku
        self.title = title
        self.brand = brand
        self.origin_country = origin_country
        self.hs_code = hs_code
        self.category = category
        self.list_price_minor = list_price_minor
        self.currency = currency
        self.vat_rate = vat_rate
        self.consumption_tax_rate = consumption_tax_rate
        self.weight_grams = weight_grams

    @event("Revised", topic="commerce.Product.Revised")
    def revise(self, changes: dict) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    REVISABLE = (
        "title",
        "brand",
        "category",
        "hs_code",
        "list_price_minor",
        "vat_rate",
        "consumption_tax_rate",
        "weight_grams",
    )


def require_merchant(owner_id: UUID, merchant_id: UUID, what: str) -> None:
    """Another merchant's resource looks exactly like a missing one: ids do not leak."""
    if owner_id != merchant_id:
        raise NotFound(f"no such {what}")


SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HS_CODE = re.compile(r"^\d{6,10}$")


def validate_product(fields: dict) -> None:
    """Ranges a product must respect; types are already checked at the edge."""

    def text(name: str, most: int) -> None:
        if name in fields and not (0 < len(fields[name].strip()) <= most):
            raise InvalidInput(f"must be 1 to {most} characters", field=name)

    def number(name: str, low: object, high: object, unit: str) -> None:
        if name in fields and not (low <= fields[name] <= high):  # type: ignore[operator]
            raise InvalidInput(f"must be from {low} to {high} {unit}".rstrip(), field=name)

    if "sku" in fields and not SKU.match(fields["sku"]):
        raise InvalidInput("letters, digits, '.', '_' or '-', at most 64", field="sku")
    text("title", 200)
    text("brand", 100)
    text("category", 100)
    if "origin_country" in fields:
        require_country(fields["origin_country"], "origin_country")
    if "hs_code" in fields and not HS_CODE.match(fields["hs_code"]):
        raise InvalidInput("must be 6 to 10 digits", field="hs_code")
    number("list_price_minor", 1, 10**10, "minor units")
    number("vat_rate", Decimal(0), Decimal("0.5"), "")
    number("consumption_tax_rate", Decimal(0), Decimal("0.6"), "")
    number("weight_grams", 1, 100_000, "grams")
