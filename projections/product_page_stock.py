"""On-hand units and holds per stock row, as read models need them (product page and search).

The Stock aggregate decides availability at read time from each hold's deadline, so a lapsed
hold stops counting the moment it lapses, sweeper or not (commerce/domain/inventory.py). A view
that stores one "available" number would be wrong between the lapse and the sweeper's
`ReservationExpired`. So the ledger keeps the holds themselves: confirmed ones (no deadline)
and pending ones with their deadline, and the API computes availability for the moment it
answers.

Deadlines are rounded *up* to `HOLD_BUCKET_SECONDS`, so a page carries at most
ttl / bucket pending entries per warehouse (180 under the 15-minute TTL) even when a flash sale
holds thousands of unpaid orders; a lapsed hold may count for up to that many seconds longer,
never shorter. Events release holds by reservation id only, so the exact quantity per
reservation is kept here too.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from commerce.domain.inventory import Stock

HOLD_BUCKET_SECONDS = 5

OPENED, RECEIVED, ADJUSTED, RESERVED, CONFIRMED, DRAWN, RELEASED, EXPIRED, COMMITTED = (
    getattr(Stock, name).TOPIC
    for name in ("Opened", "Received", "Adjusted", "Reserved", "ReservationConfirmed",
                 "HoldDrawn", "ReservationReleased", "ReservationExpired", "Committed")
)  # fmt: skip
STOCK_TOPICS = (OPENED, RECEIVED, ADJUSTED, RESERVED, CONFIRMED, DRAWN, RELEASED, EXPIRED,
                COMMITTED)  # fmt: skip


def bucket(until: datetime) -> int:
    return math.ceil(until.timestamp() / HOLD_BUCKET_SECONDS) * HOLD_BUCKET_SECONDS


def available(on_hand: int, held: int, pending: list, now: float) -> int:
    """Units free at `now` (epoch seconds): pending holds count until their deadline passes."""
    return on_hand - held - sum(qty for until, qty in pending if until > now)


class StockLedger:
    def __init__(self, stocks: str, holds: str) -> None:
        self.stocks = stocks
        self.holds = holds
        self._product_of: dict[str, tuple[str, str]] = {}  # immutable: stock -> product, warehouse

    def schema(self) -> tuple[str, ...]:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.stocks} (id TEXT PRIMARY KEY, product_id TEXT NOT"
            " NULL, warehouse_id TEXT NOT NULL, on_hand BIGINT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {self.stocks}_product ON {self.stocks} (product_id)",
            f"CREATE TABLE IF NOT EXISTS {self.holds} (stock_id TEXT NOT NULL, reservation_id"
            " TEXT NOT NULL, quantity BIGINT NOT NULL, until BIGINT,"
            " PRIMARY KEY (stock_id, reservation_id))",
        )

    def tables(self) -> tuple[str, ...]:
        return (self.stocks, self.holds)

    def apply(self, cur: Any, topic: str, event: Any) -> str | None:
        """Record one Stock event; returns the id of the product whose stock changed."""
        sid = str(event.originator_id)
        if topic == OPENED:
            pid, wid = str(event.product_id), str(event.warehouse_id)
            cur.execute(
                f"INSERT INTO {self.stocks} (id, product_id, warehouse_id, on_hand)"  # noqa: S608
                " VALUES (%s, %s, %s, 0) ON CONFLICT (id) DO NOTHING",
                (sid, pid, wid),
            )
            self._product_of[sid] = (pid, wid)
            return pid
        located = self.locate(cur, sid)
        if located is None:
            return None
        if topic in (RECEIVED, ADJUSTED, COMMITTED):
            delta = {RECEIVED: "quantity", ADJUSTED: "delta"}.get(topic)
            change = getattr(event, delta) if delta else -event.quantity
            cur.execute(
                f"UPDATE {self.stocks} SET on_hand = on_hand + %s WHERE id = %s",  # noqa: S608
                (change, sid),
            )
            if topic == COMMITTED:
                self._forget(cur, sid, event.reservation_id)
        elif topic == RESERVED:
            self._hold(cur, sid, event.reservation_id, event.quantity, bucket(event.until))
        elif topic == CONFIRMED:
            cur.execute(
                f"UPDATE {self.holds} SET until = NULL"  # noqa: S608
                " WHERE stock_id = %s AND reservation_id = %s",
                (sid, str(event.reservation_id)),
            )
        elif topic == DRAWN:
            cur.execute(
                f"SELECT quantity, until FROM {self.holds}"  # noqa: S608
                " WHERE stock_id = %s AND reservation_id = %s",
                (sid, str(event.hold_id)),
            )
            row = cur.fetchone()
            if row is not None:
                left = int(row[0]) - event.quantity
                if left > 0:
                    self._hold(cur, sid, event.hold_id, left, row[1])
                else:
                    self._forget(cur, sid, event.hold_id)
            self._hold(cur, sid, event.reservation_id, event.quantity, None)
        elif topic in (RELEASED, EXPIRED):
            self._forget(cur, sid, event.reservation_id)
        return located[0]

    def locate(self, cur: Any, stock_id: str) -> tuple[str, str] | None:
        found = self._product_of.get(stock_id)
        if found is None:
            cur.execute(
                f"SELECT product_id, warehouse_id FROM {self.stocks} WHERE id = %s",  # noqa: S608
                (stock_id,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            found = self._product_of[stock_id] = (row[0], row[1])
        return found

    def summary(self, cur: Any, product_id: str) -> list[dict]:
        """Per warehouse: on hand, held for good, and pending holds as [deadline, qty] pairs."""
        cur.execute(
            f"SELECT s.id, s.warehouse_id, s.on_hand, h.until, SUM(h.quantity)"  # noqa: S608
            f" FROM {self.stocks} s LEFT JOIN {self.holds} h ON h.stock_id = s.id"
            " WHERE s.product_id = %s GROUP BY s.id, s.warehouse_id, s.on_hand, h.until"
            " ORDER BY s.warehouse_id, h.until",
            (product_id,),
        )
        rows: dict[str, dict] = {}
        for _sid, wid, on_hand, until, qty in cur.fetchall():
            entry = rows.setdefault(
                wid, {"warehouse_id": wid, "on_hand": int(on_hand), "held": 0, "pending": []}
            )
            if qty is None:
                continue
            if until is None:
                entry["held"] += int(qty)
            else:
                entry["pending"].append([int(until), int(qty)])
        return list(rows.values())

    def _hold(self, cur: Any, sid: str, rid: Any, quantity: int, until: int | None) -> None:
        cur.execute(
            f"INSERT INTO {self.holds} (stock_id, reservation_id, quantity, until)"  # noqa: S608
            " VALUES (%s, %s, %s, %s) ON CONFLICT (stock_id, reservation_id) DO UPDATE"
            " SET quantity = excluded.quantity, until = excluded.until",
            (sid, str(rid), quantity, until),
        )

    def _forget(self, cur: Any, sid: str, rid: Any) -> None:
        cur.execute(
            f"DELETE FROM {self.holds} WHERE stock_id = %s AND reservation_id = %s",  # noqa: S608
            (sid, str(rid)),
        )
