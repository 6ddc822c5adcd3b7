"""Aggregates as the JSON the API answers with. Pure, so idempotency records can store it."""

from __future__ import annotations

from datetime import datetime

from commerce.domain.accounts import FxRate
from commerce.domain.inventory import Stock
from commerce.domain.merchants import Merchant, Product, Warehouse
from commerce.domain.orders import Order


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def merchant_view(m: Merchant) -> dict:
    return {
        "id": str(m.id),
        "name": m.name,
        "home_country": m.home_country,
        "settlement_currency": m.settlement_currency,
        "warehouse_ids": [str(w) for w in m.warehouse_ids],
        "created_at": iso(m.created_on),
    }


def warehouse_view(w: Warehouse) -> dict:
    low, high = w.delivery_days
    return {
        "id": str(w.id),
        "merchant_id": str(w.merchant_id),
        "name": w.name,
        "kind": w.kind,
        "customs_mode": w.customs_mode,
        "country": w.country,
        "address": w.address,
        "delivery_days": {"min": low, "max": high},
        "created_at": iso(w.created_on),
    }


def product_view(p: Product) -> dict:
    return {
        "id": str(p.id),
        "merchant_id": str(p.merchant_id),
        "sku": p.sku,
        "title": p.title,
        "brand": p.brand,
        "origin_country": p.origin_country,
        "hs_code": p.hs_code,
        "category": p.category,
        "list_price_minor": p.list_price_minor,
        "currency": p.currency,
        "vat_rate": str(p.vat_rate),
        "consumption_tax_rate": str(p.consumption_tax_rate),
        "weight_grams": p.weight_grams,
        "version": p.version,
    }


def stock_view(s: Stock, warehouse: Warehouse | None, now: datetime) -> dict:
    return {
        "product_id": str(s.product_id),
        "sku": s.sku,
        "warehouse_id": str(s.warehouse_id),
        "warehouse_kind": warehouse.kind if warehouse else None,
        "on_hand": s.on_hand,
        "reserved": s.reserved(now),
        "available": s.available(now),
        "version": s.version,
    }


def fx_view(f: FxRate) -> dict:
    return {"currency": f.currency, "cny_per_unit": str(f.rate), "updated_at": iso(f.modified_on)}


def order_view(o: Order, now: datetime) -> dict:
    return {
        "id": str(o.id),
        "merchant_id": str(o.merchant_id),
        "buyer_id": str(o.buyer_id),
        "status": o.status(now),
        "lines": o.lines,
        "quote": o.quote,
        "total_fen": o.total_fen,
        "currency": "CNY",
        "identity": {
            "name": o.identity["name_masked"],
            "resident_id": o.identity["resident_id_masked"],
        },
        "address": o.address,
        "fx_rates": o.fx_rates,
        "placed_at": iso(o.placed_at),
        "pay_before": iso(o.expires_at),
        "payment_ref": o.payment_ref,
        "paid_at": iso(o.paid_at),
        "customs": o.customs,
        "shipment": o.shipment,
        "refunded_fen": o.refunded_fen,
        "attribution": o.attribution,
        "coupon_id": str(o.coupon_id) if getattr(o, "coupon_id", None) else None,
        "payment_provider": o.payment_provider,
        "history": [{"status": s, "at": iso(at)} for s, at in o.history],
        "version": o.version,
    }
