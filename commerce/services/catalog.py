"""Merchants, warehouses, products, stock, FX rates and buyers."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from commerce import credentials, representations
from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.accounts import Buyer, FxRate
from commerce.domain.errors import Conflict, InvalidInput, NotFound
from commerce.domain.inventory import Stock
from commerce.domain.merchants import (
    Merchant,
    Product,
    Warehouse,
    require_merchant,
    validate_product,
)
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.idempotency import Answer, Idempotency, once


def onboard_merchant(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    idem: Idempotency | None,
    name: str,
    home_country: str,
    settlement_currency: str,
) -> Answer:
    def create() -> Answer:
        Merchant.validate(name, home_country, settlement_currency)
        merchant_id = idem.resource_id("merchant") if idem else uuid4()
        key = credentials.issue(credentials.MERCHANT_PREFIX, merchant_id, cfg.secret_key)
        merchant = Merchant(
            id=merchant_id,
            name=name.strip(),
            home_country=home_country,
            settlement_currency=settlement_currency,
            api_key_hash=credentials.hash_secret(key),
        )
        uow.add(merchant)
        return Answer(201, representations.merchant_view(merchant))

    return once(uow, idem, create)


def get_merchant(uow: UnitOfWork, merchant_id: UUID) -> Merchant:
    merchant = uow.get(merchant_id, Merchant)
    if merchant is None:
        raise NotFound("no such merchant", field="merchant_id")
    return merchant


def open_warehouse(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    idem: Idempotency | None,
    merchant_id: UUID,
    name: str,
    kind: str,
    country: str,
    address: str,
) -> Answer:
    def create() -> Answer:
        merchant = get_merchant(uow, merchant_id)
        Warehouse.validate(name, kind, country, address)
        if len(merchant.warehouse_ids) >= 200:
            raise Conflict("a merchant may run at most 200 warehouses")
        warehouse_id = idem.resource_id("warehouse") if idem else uuid4()
        warehouse = Warehouse(
            id=warehouse_id,
            merchant_id=merchant_id,
            name=name.strip(),
            kind=kind,
            country=country,
            address=address.strip(),
        )
        merchant.register_warehouse(warehouse.id)
        uow.add(warehouse)
        return Answer(201, representations.warehouse_view(warehouse))

    return once(uow, idem, create)


def get_warehouse(uow: UnitOfWork, merchant_id: UUID, warehouse_id: UUID) -> Warehouse:
    warehouse = uow.get(warehouse_id, Warehouse)
    if warehouse is None:
        raise NotFound("no such warehouse", field="warehouse_id")
    require_merchant(warehouse.merchant_id, merchant_id, "warehouse")
    return warehouse


def list_product(
    uow: UnitOfWork, cfg: CommerceConfig, idem: Idempotency | None, merchant_id: UUID, fields: dict
) -> Answer:
    def create() -> Answer:
        merchant = get_merchant(uow, merchant_id)
        validate_product(fields)
        product_id = ids.product_id(merchant_id, fields["sku"])
        if uow.get(product_id) is not None:
            raise Conflict(f"SKU {fields['sku']} is already listed", field="sku")
        product = Product(
            id=product_id, merchant_id=merchant_id, currency=merchant.settlement_currency, **fields
        )
        uow.add(product)
        return Answer(201, representations.product_view(product))

    return once(uow, idem, create)


def get_product(uow: UnitOfWork, merchant_id: UUID, product_id: UUID) -> Product:
    product = uow.get(product_id, Product)
    if product is None:
        raise NotFound("no such product", field="product_id")
    require_merchant(product.merchant_id, merchant_id, "product")
    return product


def revise_product(
    uow: UnitOfWork, cfg: CommerceConfig, merchant_id: UUID, product_id: UUID, changes: dict
) -> dict:
    product = get_product(uow, merchant_id, product_id)
    unknown = set(changes) - set(Product.REVISABLE)
    if unknown:
        raise InvalidInput("cannot be changed", field=sorted(unknown)[0])
    validate_product(changes)
    changes = {k: v for k, v in changes.items() if getattr(product, k) != v}
    if changes:
        product.revise(changes)
    return representations.product_view(product)


def _stock(uow: UnitOfWork, merchant_id: UUID, product_id: UUID, warehouse_id: UUID) -> Stock:
    product = get_product(uow, merchant_id, product_id)
    get_warehouse(uow, merchant_id, warehouse_id)
    stock = uow.get(ids.stock_id(product_id, warehouse_id), Stock)
    if stock is None:
        stock = Stock(
            id=ids.stock_id(product_id, warehouse_id),
            merchant_id=merchant_id,
            product_id=product_id,
            warehouse_id=warehouse_id,
            sku=product.sku,
        )
        uow.add(stock)
    return stock


def receive_stock(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    merchant_id: UUID,
    product_id: UUID,
    warehouse_id: UUID,
    quantity: int,
    idem: Idempotency | None = None,
) -> Answer:
    """A retried receipt must not count the goods twice: send an Idempotency-Key."""

    def create() -> Answer:
        if not 1 <= quantity <= 10_000_000:
            raise InvalidInput("must be from 1 to 10000000", field="quantity")
        stock = _stock(uow, merchant_id, product_id, warehouse_id)
        stock.receive(quantity)
        warehouse = uow.get(warehouse_id, Warehouse)
        return Answer(201, representations.stock_view(stock, warehouse, cfg.clock()))

    return once(uow, idem, create)


def adjust_stock(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    merchant_id: UUID,
    product_id: UUID,
    warehouse_id: UUID,
    delta: int,
    reason: str,
    idem: Idempotency | None = None,
) -> Answer:
    def create() -> Answer:
        if not -10_000_000 <= delta <= 10_000_000:
            raise InvalidInput("must be from -10000000 to 10000000", field="delta")
        if len(reason) > 200:
            raise InvalidInput("at most 200 characters", field="reason")
        stock = _stock(uow, merchant_id, product_id, warehouse_id)
        stock.adjust(delta, reason.strip(), cfg.clock())
        warehouse = uow.get(warehouse_id, Warehouse)
        return Answer(201, representations.stock_view(stock, warehouse, cfg.clock()))

    return once(uow, idem, create)


def set_fx_rate(
    uow: UnitOfWork, cfg: CommerceConfig, currency: str, rate: Decimal, set_by: str
) -> dict:
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper() or currency == "CNY":
        raise InvalidInput("must be an ISO 4217 code of a foreign currency", field="currency")
    fx = uow.get(ids.fx_rate_id(currency), FxRate)
    if fx is None:
        fx = uow.add(FxRate(id=ids.fx_rate_id(currency), currency=currency))
    fx.set(rate, set_by)
    return representations.fx_view(fx)


def sign_up_buyer(
    uow: UnitOfWork, cfg: CommerceConfig, idem: Idempotency | None, display_name: str
) -> Answer:
    def create() -> Answer:
        if not 0 < len(display_name.strip()) <= 64:
            raise InvalidInput("must be 1 to 64 characters", field="display_name")
        buyer_id = idem.resource_id("buyer") if idem else uuid4()
        token = credentials.issue(credentials.BUYER_PREFIX, buyer_id, cfg.secret_key)
        buyer = uow.add(
            Buyer(
                id=buyer_id,
                display_name=display_name.strip(),
                token_hash=credentials.hash_secret(token),
            )
        )
        return Answer(201, {"id": str(buyer.id), "display_name": buyer.display_name})

    return once(uow, idem, create)
