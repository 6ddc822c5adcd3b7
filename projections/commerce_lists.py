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


TABLES = ("merchants", "warehouses", "products", "orders")


class CommerceLists:
    """`gen`: a projections.registry.Generation (tables `list_<x>_g<n>`), or None for fixed
    names. Readers take the names from the runner that keeps them (`CommerceRuntime.lists`), so
    a blue/green rebuild switches lists like any other view."""

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

    def __init__(self, gen: Any = None) -> None:
        self.name = gen.name("commerce_lists") if gen else "commerce_lists"
        t = self.t = {k: gen.name(f"list_{k}") if gen else f"list_{k}" for k in TABLES}
        self.tables = tuple(t.values())  # what a rebuild drops
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {t['merchants']} (id TEXT PRIMARY KEY, seq BIGINT NOT"
            " NULL, body TEXT NOT NULL)",
            *(
                f"CREATE TABLE IF NOT EXISTS {t[k]} (id TEXT PRIMARY KEY, merchant_id TEXT NOT"
                f" NULL, seq BIGINT NOT NULL, body TEXT NOT NULL)"
                for k in ("warehouses", "products")
            ),
            *(
                f"CREATE INDEX IF NOT EXISTS {t[k]}_merchant ON {t[k]} (merchant_id, seq)"
                for k in ("warehouses", "products")
            ),
            f"CREATE TABLE IF NOT EXISTS {t['orders']} (id TEXT PRIMARY KEY, merchant_id TEXT NOT"
            " NULL, buyer_id TEXT NOT NULL, seq BIGINT NOT NULL, status TEXT NOT NULL, expires_at"
            " DOUBLE PRECISION NOT NULL, body TEXT NOT NULL)",
            *(
                f"CREATE INDEX IF NOT EXISTS {t['orders']}_{c} ON {t['orders']} ({c}, seq)"
                for c in ("merchant_id", "buyer_id")
            ),
            f"CREATE INDEX IF NOT EXISTS {t['orders']}_due ON {t['orders']} (status, expires_at)",
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
            row = (oid, position, json.dumps(body))
            self._insert(cur, self.t["merchants"], row, "id, seq, body")
        elif isinstance(event, Warehouse.Opened):  # type: ignore[attr-defined]
            body = {"id": oid, "name": event.name, "kind": event.kind, "country": event.country}
            self._insert(
                cur,
                self.t["warehouses"],
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
                self.t["products"],
                (oid, str(event.merchant_id), position, json.dumps(body)),
                "id, merchant_id, seq, body",
            )
        elif isinstance(event, Product.Revised):  # type: ignore[attr-defined]
            self._patch(
                cur,
                self.t["products"],
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
                f"INSERT INTO {self.t['orders']} (id, merchant_id, buyer_id, seq, status,"  # noqa: S608
                " expires_at, body) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
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
            orders = self.t["orders"]
            cur.execute(f"UPDATE {orders} SET status = %s WHERE id = %s", (status, oid))  # noqa: S608
            self._patch(cur, orders, oid, {"status": status})

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
