"""The commerce side of a flash deal: its stock set aside at open, and one order per claim.

Why set the deal's units aside as one hold: thousands of claims a second cannot each take a
turn on the SKU's stock stream, which every other order of that SKU also needs. The deal's
owner decides claims against the deal alone; an order created by a claim reserves nothing more,
and only when it is paid are its units drawn from the deal's hold (`Stock.draw`), which refuses
to hand out more than was set aside. What nobody claimed returns to stock when the deal closes
(`give_back_unsold`); what was claimed and never paid, when the hold lapses, a payment window
after the deal's end.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from commerce import representations
from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.errors import IdempotencyKeyReused, InvalidInput, LimitBreached, NotFound
from commerce.domain.identity import BuyerIdentity
from commerce.domain.inventory import BuyerAnnualQuota, Stock
from commerce.domain.merchants import Product, Warehouse
from commerce.domain.orders import Order
from commerce.domain.pricing import (
    LimitExceeded,
    LineInput,
    ShipmentInput,
    check_annual_limit,
    check_order_limit,
    quote_order,
)
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.idempotency import Answer
from commerce.services.ordering import _quote_dict, validate_address


def deal_stock(
    uow: UnitOfWork, merchant_id: UUID, sku: str, warehouse_id: UUID
) -> tuple[Product, Warehouse, Stock]:
    """The merchant's own product and warehouse; anyone else's looks missing."""
    product = uow.get(ids.product_id(merchant_id, sku), Product)
    if product is None:
        raise InvalidInput(f"unknown SKU {sku!r}", field="sku")
    warehouse = uow.get(warehouse_id, Warehouse)
    if warehouse is None or warehouse.merchant_id != merchant_id:
        raise NotFound("no such warehouse", field="warehouse_id")
    stock = uow.get(ids.stock_id(product.id, warehouse_id), Stock)
    if stock is None:
        raise InvalidInput(f"no stock of {sku!r} in this warehouse", field="sku")
    return product, warehouse, stock


def set_aside(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    merchant_id: UUID,
    sku: str,
    warehouse_id: UUID,
    deal_id: UUID,
    quantity: int,
    until: datetime,
) -> dict:
    """Hold the deal's units (idempotent by deal id, so a retried open holds them once)."""
    product, _, stock = deal_stock(uow, merchant_id, sku, warehouse_id)
    if deal_id not in stock.reservations:
        stock.reserve(deal_id, quantity, until, cfg.clock())
    return {"product_id": str(product.id), "stock_id": str(stock.id)}


def give_back(uow: UnitOfWork, merchant_id: UUID, sku: str, warehouse_id: UUID, deal_id: UUID):
    """The deal could not be opened after its units were held: release them at once."""
    _, _, stock = deal_stock(uow, merchant_id, sku, warehouse_id)
    stock.release(deal_id)


def give_back_unsold(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    merchant_id: UUID,
    sku: str,
    warehouse_id: UUID,
    deal_id: UUID,
    unsold: int,
) -> None:
    """The deal has closed: its units nobody holds or paid for go back to stock now."""
    _, _, stock = deal_stock(uow, merchant_id, sku, warehouse_id)
    stock.give_back(deal_id, unsold, cfg.clock())


def place_claim_order(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    claim: dict,
    deal: dict,
    buyer_id: UUID,
    identity: BuyerIdentity,
    address: dict,
    attribution: dict,
    fingerprint: str,
    payment_provider: str | None,
) -> Answer:
    """The order for one claim, at the deal price, payable until the claim's deadline.

    Idempotent by claim: the order id derives from the claim id, so a retried claim answers
    the order it created, or refuses if the same key came with a different request."""
    order_id = ids.claim_order_id(UUID(claim["id"]))
    existing = uow.get(order_id, Order)
    if existing is not None:
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request", field="Idempotency-Key"
            )
        first = existing if existing.version == 1 else uow.original(existing.id, 1)
        view = representations.order_view(first or existing, existing.placed_at)
        return Answer(201, view, replayed=True)
    now = cfg.clock()
    merchant_id, warehouse_id = UUID(deal["merchant_id"]), UUID(deal["warehouse_id"])
    product, warehouse, stock = deal_stock(uow, merchant_id, deal["sku"], warehouse_id)
    quantity, price = int(claim["quantity"]), int(deal["price_fen"])
    line = LineInput(
        sku=product.sku,
        quantity=quantity,
        unit_price_minor=price,
        currency="CNY",
        vat_rate=product.vat_rate,
        consumption_tax_rate=product.consumption_tax_rate,
        weight_grams=product.weight_grams,
    )
    shipment = ShipmentInput(mode=warehouse.kind, warehouse_id=str(warehouse.id), lines=(line,))
    pay_by = datetime.fromisoformat(claim["pay_by"])
    year = cfg.quota_year(now)
    quota_id = ids.quota_id(identity.identity_hash, year)
    quota = uow.get(quota_id, BuyerAnnualQuota)
    try:
        quote = quote_order([shipment], {}, cfg.freight, cfg.cbec)
        check_order_limit(quote, cfg.cbec)
        check_annual_limit(quota.used_fen(now) if quota else 0, quote.dutiable_fen, cfg.cbec)
    except LimitExceeded as exc:
        raise LimitBreached(str(exc), field="quantity", rule=exc.rule) from None
    if quota is None:
        quota = uow.add(
            BuyerAnnualQuota(id=quota_id, identity_hash=identity.identity_hash, year=year)
        )
    quota.hold(order_id, quote.dutiable_fen, pay_by)
    order = Order(
        id=order_id,
        merchant_id=merchant_id,
        buyer_id=buyer_id,
        lines=[
            {
                "sku": product.sku,
                "product_id": str(product.id),
                "title": product.title,
                "quantity": quantity,
                "unit_price_minor": price,
                "currency": "CNY",
                "allocations": [{"warehouse_id": str(warehouse.id), "quantity": quantity}],
            }
        ],
        quote=_quote_dict(quote),
        identity={
            "name_masked": identity.name_masked,
            "resident_id_masked": identity.resident_id_masked,
            "identity_hash": identity.identity_hash,
        },
        address=validate_address(address),
        fx_rates={},
        placed_at=now,
        expires_at=pay_by,
        stock_ids=[stock.id],
        quota_id=quota_id,
        attribution=attribution,
        fingerprint=fingerprint,
        payment_provider=payment_provider,
        drawn_from=UUID(deal["id"]),
    )
    uow.add(order)
    return Answer(201, representations.order_view(order, now))
