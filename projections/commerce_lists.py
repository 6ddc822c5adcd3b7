"""List read models of the commerce context: merchants, warehouses, products and orders.

Lists are served from here, never by loading aggregates (the eventsourcing shop example's own
TODO). `seq` is the notification id of the creating event: a stable, unique sort key for
cursor pagination.
"""

from __future__ import annotations

import json
from typing import Any

from commerce.domain.accounts import Buyer
from commerce.domain.merchants import Merchant, Product, Warehouse
from commerce.domain.orders import Order


def _topics(*classes: type) -> tuple[str, ...]:
    return tuple(c.TOPIC for c in classes)  # type: ignore[attr-defined]


class CommerceLists:
    name = "commerce_lists"
    topics = _topics(
        Merchant.Onboarded,  # type: ignore[attr-defined]
        Warehouse.Opened,  # type: ignore[attr-defined]
        Product.Listed,  # type: ignore[attr-defined]
        Product.Revised,  # type: ignore[attr-defined]
        Buyer.SignedUp,  # type: ignore[attr-defined]
        Order.Placed,  # type: ignore[attr-defined]
        Order.Paid,  # type: ignore[attr-defined]
        Order.Cancelled,  # type: ignore[attr-defined]
        Order.Expired,  # type: ignore[attr-defined]
        Order.CustomsDeclared,  # type: ignore[attr-defined]
        Order.CustomsCleared,  # type: ignore[attr-defined]
        Order.CustomsRejected,  # type: ignore[attr-defined]
        Order.Shipped,  # type: ignore[attr-defined]
        Order.Delivered,  # type: ignore[attr-defined]
        Order.Refunded,  # type: ignore[attr-defined]
    )
    schema = (
        "CREATE TABLE IF NOT EXISTS list_merchants (id TEXT PRIMARY KEY, seq BIGINT NOT NULL,"
        " body TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS list_warehouses (id TEXT PRIMARY KEY, merchant_id TEXT NOT"
        " NULL, seq BIGINT NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS list_warehouses_merchant ON list_warehouses (merchant_id, seq)",
        "CREATE TABLE IF NOT EXISTS list_products (id TEXT PRIMARY KEY, merchant_id TEXT NOT"
        " NULL, seq BIGINT NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS list_products_merchant ON list_products (merchant_id, seq)",
        "CREATE TABLE IF NOT EXISTS list_orders (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL,"
        " buyer_id TEXT NOT NULL, seq BIGINT NOT NULL, status TEXT NOT NULL, expires_at"
        " DOUBLE PRECISION NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS list_orders_merchant ON list_orders (merchant_id, seq)",
        "CREATE INDEX IF NOT EXISTS list_orders_buyer ON list_orders (buyer_id, seq)",
        "CREATE INDEX IF NOT EXISTS list_orders_due ON list_orders (status, expires_at)",
    )

    def apply(self, cur: Any, event: Any, position: int) -> None:
        oid = str(event.originator_id)
        if isinstance(event, Merchant.Onboarded):  # type: ignore[attr-defined]
            body = {
                "id": oid,
                "name": event.name,
                "home_country": event.home_country,
                "settlement_currency": event.settlement_currency,
            }
            self._insert(cur, "list_merchants", (oid, position, json.dumps(body)), "id, seq, body")
        elif isinstance(event, Warehouse.Opened):  # type: ignore[attr-defined]
            body = {"id": oid, "name": event.name, "kind": event.kind, "country": event.country}
            self._insert(
                cur,
                "list_warehouses",
                (oid, str(event.merchant_id), position, json.dumps(body)),
                "id, merchant_id, seq, body",
            )
        elif isinstance(event, Product.Listed):  # type: ignore[attr-defined]
            body = {
                "id": oid,
                "sku": event.sku,
                "title": event.title,
                "brand": event.brand,
                "list_price_minor": event.list_price_minor,
                "currency": event.currency,
            }
            self._insert(
                cur,
                "list_products",
                (oid, str(event.merchant_id), position, json.dumps(body)),
                "id, merchant_id, seq, body",
            )
        elif isinstance(event, Product.Revised):  # type: ignore[attr-defined]
            self._patch(
                cur,
                "list_products",
                oid,
                {
                    k: v
                    for k, v in event.changes.items()
                    if k in ("title", "brand", "list_price_minor")
                },
            )
        elif isinstance(event, Order.Placed):  # type: ignore[attr-defined]
            body = {
                "id": oid,
                "merchant_id": str(event.merchant_id),
                "buyer_id": str(event.buyer_id),
                "status": "placed",
                "total_fen": event.quote["total_fen"],
                "placed_at": event.placed_at.isoformat(),
                "pay_before": event.expires_at.isoformat(),
                "lines": [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in event.lines],
            }
            cur.execute(
                "INSERT INTO list_orders (id, merchant_id, buyer_id, seq, status, expires_at,"
                " body) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (
                    oid,
                    body["merchant_id"],
                    body["buyer_id"],
                    position,
                    "placed",
                    event.expires_at.timestamp(),
                    json.dumps(body),
                ),
            )
        elif isinstance(event, Order.Event):  # type: ignore[attr-defined]
            status = _ORDER_STATUS.get(type(event).__name__)
            if status is None or (status == "refunded" and not event.full):
                return
            cur.execute("UPDATE list_orders SET status = %s WHERE id = %s", (status, oid))
            self._patch(cur, "list_orders", oid, {"status": status})

    @staticmethod
    def _insert(cur: Any, table: str, row: tuple, columns: str) -> None:
        marks = ", ".join(["%s"] * len(row))
        cur.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING",  # noqa: S608
            row,
        )

    @staticmethod
    def _patch(cur: Any, table: str, oid: str, changes: dict) -> None:
        if not changes:
            return
        cur.execute(f"SELECT body FROM {table} WHERE id = %s", (oid,))  # noqa: S608
        row = cur.fetchone()
        if row:
            body = json.loads(row[0]) | changes
            cur.execute(f"UPDATE {table} SET body = %s WHERE id = %s", (json.dumps(body), oid))  # noqa: S608


_ORDER_STATUS = {
    "Paid": "paid",
    "Cancelled": "cancelled",
    "Expired": "expired",
    "CustomsDeclared": "customs_declared",
    "CustomsCleared": "customs_cleared",
    "CustomsRejected": "customs_rejected",
    "Shipped": "shipped",
    "Delivered": "delivered",
    "Refunded": "refunded",
}
