"""Placing orders and moving them through their life, with stock and CBEC quota kept in step."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime
from uuid import UUID, uuid4

from commerce import representations
from commerce.config import CHINA, CommerceConfig
from commerce.domain import ids
from commerce.domain.accounts import FxRate
from commerce.domain.allocation import InsufficientStock, StockOption, allocate
from commerce.domain.coupons import CouponTerms, CouponUses
from commerce.domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    LimitBreached,
    OutOfStock,
)
from commerce.domain.identity import BuyerIdentity, InvalidName, InvalidResidentId
from commerce.domain.inventory import BuyerAnnualQuota, Stock
from commerce.domain.merchants import WAREHOUSE_KINDS, Product, Warehouse
from commerce.domain.orders import Order
from commerce.domain.pricing import (
    LimitExceeded,
    LineInput,
    ShipmentInput,
    UnknownCurrency,
    check_annual_limit,
    check_order_limit,
    quote_order,
)
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services import referrals
from commerce.services.catalog import get_merchant
from commerce.services.idempotency import Answer, Idempotency

MAX_LINES = 50
MAX_QUANTITY = 999
MOBILE = re.compile(r"^1[3-9]\d{9}$")
POSTCODE = re.compile(r"^\d{6}$")
ADDRESS_FIELDS = {"recipient": 64, "province": 32, "city": 32, "district": 32, "street": 200}


def validate_address(address: dict) -> dict:
    """A mainland address: recipient, 11-digit mobile, province/city/district/street, postcode."""
    for name, most in ADDRESS_FIELDS.items():
        value = str(address.get(name) or "").strip()
        if not 0 < len(value) <= most:
            raise InvalidInput(f"must be 1 to {most} characters", field=f"address.{name}")
    if not MOBILE.match(str(address.get("mobile") or "")):
        raise InvalidInput("must be an 11-digit mainland mobile number", field="address.mobile")
    if not POSTCODE.match(str(address.get("postcode") or "")):
        raise InvalidInput("must be a 6-digit postcode", field="address.postcode")
    return {k: str(address[k]).strip() for k in (*ADDRESS_FIELDS, "mobile", "postcode")}


def merge_lines(lines: list[tuple[str, int]]) -> dict[str, int]:
    if not 0 < len(lines) <= MAX_LINES:
        raise InvalidInput(f"an order has 1 to {MAX_LINES} lines", field="lines")
    merged: dict[str, int] = {}
    for i, (sku, qty) in enumerate(lines):
        if not 0 < qty <= MAX_QUANTITY:
            raise InvalidInput(f"must be from 1 to {MAX_QUANTITY}", field=f"lines[{i}].quantity")
        merged[sku] = merged.get(sku, 0) + qty
        if merged[sku] > MAX_QUANTITY:
            raise InvalidInput(f"at most {MAX_QUANTITY} per SKU", field=f"lines[{i}].quantity")
    return merged


def place_order(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    idem: Idempotency | None,
    buyer_id: UUID,
    merchant_id: UUID,
    lines: list[tuple[str, int]],
    identity: BuyerIdentity,
    address: dict,
    attribution: dict | None = None,
    order_id: UUID | None = None,
    payment_provider: str | None = None,
    promo_code: str | None = None,
    coupon: CouponTerms | None = None,
) -> Answer:
    """`identity` comes from `identify`, outside the writer: checking and hashing a resident ID
    is pure work that need not hold up every other order. `order_id` lets the caller know the
    id up front (under an Idempotency-Key the key decides it). A `promo_code` takes its percent
    off the goods before tax and becomes the order's attribution. A live `coupon` (its terms
    read from its session by the caller) takes its amount or percent off the goods before tax;
    one order takes one discount."""

    def create() -> Answer:
        now = cfg.clock()
        merchant = get_merchant(uow, merchant_id)
        if coupon is not None:
            usable_coupon(coupon, merchant_id, now, promo_code)
        promo = (
            referrals.redeemable_promo(uow, promo_code, merchant_id, now) if promo_code else None
        )
        shipping = validate_address(address)
        warehouses = [uow.get(w, Warehouse) for w in merchant.warehouse_ids]
        order_lines, reservations, shipment_lines = [], [], defaultdict(list)
        for i, (sku, qty) in enumerate(merge_lines(lines).items()):
            product = uow.get(ids.product_id(merchant_id, sku), Product)
            if product is None:
                raise InvalidInput(f"unknown SKU {sku!r}", field=f"lines[{i}].sku")
            stocks = {
                str(w.id): (w, uow.get(ids.stock_id(product.id, w.id), Stock))
                for w in warehouses
                if w is not None
            }
            options = [
                StockOption(wid, w.kind, s.available(now)) for wid, (w, s) in stocks.items() if s
            ]
            try:
                allocation = allocate(qty, options)
            except InsufficientStock as exc:
                raise OutOfStock(
                    f"{sku}: {exc.requested} requested, {exc.available} available",
                    field=f"lines[{i}].quantity",
                    sku=sku,
                    available=exc.available,
                ) from None
            for wid, taken in allocation:
                warehouse, stock = stocks[wid]
                reservations.append((stock, taken))
                shipment_lines[(warehouse.kind, wid)].append(_line_input(product, taken))
            order_lines.append(
                {
                    "sku": sku,
                    "product_id": str(product.id),
                    "title": product.title,
                    "quantity": qty,
                    "unit_price_minor": product.list_price_minor,
                    "currency": product.currency,
                    "allocations": [{"warehouse_id": w, "quantity": q} for w, q in allocation],
                }
            )
        rates = _fx_rates(uow, {line["currency"] for line in order_lines})
        shipments = [
            ShipmentInput(mode=kind, warehouse_id=wid, lines=tuple(items))
            for (kind, wid), items in shipment_lines.items()
        ]
        try:
            off = promo.percent_off if promo else (coupon.percent_off or 0) if coupon else 0
            amount_off = (coupon.amount_fen or 0) if coupon else 0
            quote = quote_order(
                shipments, rates, cfg.freight, cfg.cbec, percent_off=off, amount_off_fen=amount_off
            )
            check_order_limit(quote, cfg.cbec)
            quota_id = ids.quota_id(identity.identity_hash, cfg.quota_year(now))
            quota = uow.get(quota_id, BuyerAnnualQuota)
            check_annual_limit(quota.used_fen(now) if quota else 0, quote.dutiable_fen, cfg.cbec)
        except LimitExceeded as exc:
            raise LimitBreached(str(exc), field="lines", rule=exc.rule) from None
        except UnknownCurrency as exc:
            raise Conflict(f"no FX rate is set for {exc.currency}", field="lines") from None
        if quota is None:
            quota = uow.add(
                BuyerAnnualQuota(
                    id=quota_id, identity_hash=identity.identity_hash, year=cfg.quota_year(now)
                )
            )
        new_id = idem.resource_id("order") if idem else (order_id or uuid4())
        until = now + cfg.reservation_ttl
        if coupon is not None:
            uses_of(uow, coupon).take(new_id, buyer_id, until, now)
        for stock, taken in reservations:
            stock.reserve(new_id, taken, until, now)
        quota.hold(new_id, quote.dutiable_fen, until)
        order = Order(
            id=new_id,
            merchant_id=merchant_id,
            buyer_id=buyer_id,
            lines=order_lines,
            quote=_quote_dict(quote),
            identity={
                "name_masked": identity.name_masked,
                "resident_id_masked": identity.resident_id_masked,
                "identity_hash": identity.identity_hash,
            },
            address=shipping,
            fx_rates={c: str(r) for c, r in rates.items()},
            placed_at=now,
            expires_at=until,
            stock_ids=[stock.id for stock, _ in reservations],
            quota_id=quota_id,
            attribution=attribution
            if promo is None
            else referrals.redeem_promo(uow, promo, buyer_id, quote.discount_fen, now),
            fingerprint=idem.fingerprint if idem else None,
            payment_provider=payment_provider,
            coupon_id=coupon.coupon_id if coupon else None,
        )
        uow.add(order)
        return Answer(201, representations.order_view(order, now))

    if idem is None:
        return create()
    return _replayed(uow, idem) or create()


def _replayed(uow: UnitOfWork, idem: Idempotency) -> Answer | None:
    """An order is its own idempotency record: its id comes from the key and its first event
    keeps the request's fingerprint, so a replay writes nothing and stores no copy of the answer."""
    existing = uow.get(idem.resource_id("order"), Order)
    if existing is None:
        return None
    if existing.fingerprint != idem.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    first = existing if existing.version == 1 else uow.original(existing.id, 1)
    if first is None:  # placed and changed within one batch, not yet committed
        raise Conflict("the first request with this Idempotency-Key is still in progress; retry")
    return Answer(201, representations.order_view(first, first.placed_at), replayed=True)


def usable_coupon(
    coupon: CouponTerms, merchant_id: UUID, now: datetime, promo_code: str | None
) -> None:
    if promo_code:
        raise InvalidInput("an order takes a promo code or a coupon, not both", field="coupon")
    if coupon.merchant_id != merchant_id:
        raise InvalidInput("this coupon is for another merchant's goods", field="coupon")
    if not coupon.usable(now):
        raise Conflict("this coupon can no longer be used", field="coupon", reason="expired")


def uses_of(uow: UnitOfWork, coupon: CouponTerms) -> CouponUses:
    """The coupon's uses, opened with its terms the first time an order names it."""
    uses = uow.get(ids.coupon_uses_id(coupon.coupon_id), CouponUses)
    if uses is None:
        uses = uow.add(
            CouponUses(
                id=ids.coupon_uses_id(coupon.coupon_id),
                coupon_id=coupon.coupon_id,
                session_id=coupon.session_id,
                quantity=coupon.quantity,
                per_buyer_limit=coupon.per_buyer_limit,
            )
        )
    return uses  # type: ignore[return-value]


def china_today(cfg: CommerceConfig) -> date:
    """The day in China, by which a resident ID is checked (an age, a birth date not to come)."""
    return cfg.clock().astimezone(CHINA).date()


def identify(cfg: CommerceConfig, name: str, resident_id: str) -> BuyerIdentity:
    """Check the buyer's real-name identity; only its masked forms and peppered hash go on."""
    today = china_today(cfg)
    try:
        return BuyerIdentity.from_clear(name, resident_id, cfg.identity_pepper, today=today)
    except (InvalidResidentId, InvalidName) as exc:
        raise InvalidInput(getattr(exc, "reason", str(exc)), field=exc.field) from None


def probe_ids(cfg: CommerceConfig, idem: Idempotency | None, identity: BuyerIdentity) -> tuple:
    """Ids place_order looks up that are usually new: the writer checks them per batch."""
    quota = ids.quota_id(identity.identity_hash, cfg.quota_year(cfg.clock()))
    return (quota,) if idem is None else (quota, idem.resource_id("order"))


def _line_input(product: Product, quantity: int) -> LineInput:
    return LineInput(
        sku=product.sku,
        quantity=quantity,
        unit_price_minor=product.list_price_minor,
        currency=product.currency,
        vat_rate=product.vat_rate,
        consumption_tax_rate=product.consumption_tax_rate,
        weight_grams=product.weight_grams,
    )


def _fx_rates(uow: UnitOfWork, currencies: set[str]) -> dict:
    rates = {}
    for currency in sorted(currencies - {"CNY"}):
        fx = uow.get(ids.fx_rate_id(currency), FxRate)
        if fx is None or fx.rate is None:
            raise Conflict(
                f"no FX rate is set for {currency}; an admin must set one", field="lines"
            )
        rates[currency] = fx.rate
    return rates


def _quote_dict(quote) -> dict:  # type: ignore[no-untyped-def]
    return {
        "goods_fen": quote.goods_fen,
        "freight_fen": quote.freight_fen,
        "tax_fen": quote.tax_fen,
        "total_fen": quote.total_fen,
        "dutiable_fen": quote.dutiable_fen,
        "discount_fen": quote.discount_fen,  # a promo code's or coupon's, off the goods
        "shipments": [
            {
                "warehouse_id": s.warehouse_id,
                "mode": s.mode,
                "customs_mode": WAREHOUSE_KINDS[s.mode][0],
                "goods_fen": s.goods_fen,
                "freight_fen": s.freight_fen,
                "tax_fen": s.tax_fen,
                "total_fen": s.total_fen,
                "lines": [
                    {
                        "sku": ln.sku,
                        "quantity": ln.quantity,
                        "goods_fen": ln.goods_fen,
                        "freight_fen": ln.freight_fen,
                        "tax_fen": ln.tax_fen,
                        "total_fen": ln.total_fen,
                    }
                    for ln in s.lines
                ],
            }
            for s in quote.shipments
        ],
    }
