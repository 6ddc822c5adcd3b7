"""Stock of one SKU in one warehouse.

Available = on hand - active reservations, where a reservation is active until it is released,
committed or its expiry passes. Expiry is decided when reading, from the time passed in, so a
lapsed hold stops counting the moment it lapses; the sweeper's `expire` only records the fact
(Saleor's `reserved_until`, research/commerce.md §0.2).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import InvalidInput, InvalidTransition, OutOfStock
from commerce.domain.holds import Holds


class Stock(Aggregate):
    TOPIC = "commerce.Stock"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Stock.Created"

    @event("Opened", topic="commerce.Stock.Opened")
    def __init__(self, merchant_id: UUID, product_id: UUID, warehouse_id: UUID, sku: str) -> None:
        self.merchant_id = merchant_id
        self.product_id = product_id
        self.warehouse_id = warehouse_id
        self.sku = sku
        self.on_hand = 0
        # reservation id -> (quantity, expires_at or None once the order is paid)
        self.reservations = Holds()
        self.given_back: set[UUID] = set()  # deal holds whose unsold units went back once

    # -- reading -------------------------------------------------------------------------------
    def reserved(self, now: datetime) -> int:
        return self.reservations.live_total(now)

    def available(self, now: datetime) -> int:
        return self.on_hand - self.reserved(now)

    def lapsed(self, now: datetime) -> list[UUID]:
        return self.reservations.lapsed(now)

    # -- deciding ------------------------------------------------------------------------------
    def receive(self, quantity: int) -> None:
        if quantity < 1:
            raise InvalidInput("must be at least 1", field="quantity")
        self._received(quantity)

    def adjust(self, delta: int, reason: str, now: datetime) -> None:
        if delta == 0:
            raise InvalidInput("must not be zero", field="delta")
        if not reason.strip():
            raise InvalidInput(
                "say why stock changed (e.g. 'damaged', 'stocktake')", field="reason"
            )
        if self.on_hand + delta < self.reserved(now):
            raise OutOfStock(
                f"on hand would fall to {self.on_hand + delta}, below the "
                f"{self.reserved(now)} units reserved",
                field="delta",
            )
        self._adjusted(delta, reason)

    def reserve(self, reservation_id: UUID, quantity: int, until: datetime, now: datetime) -> None:
        if reservation_id in self.reservations:
            raise InvalidTransition("this reservation already exists")
        if quantity > self.available(now):
            raise OutOfStock(
                f"{self.sku}: {quantity} requested, {self.available(now)} available",
                sku=self.sku,
            )
        self._reserved(reservation_id, quantity, until)

    def confirm(self, reservation_id: UUID, now: datetime) -> None:
        """Payment arrived in time: the hold no longer expires. A lapsed hold's units may
        already be someone else's, so it cannot be revived."""
        if reservation_id in self.lapsed(now):
            raise InvalidTransition("the reservation lapsed before payment")
        if reservation_id in self.reservations:
            self._confirmed(reservation_id)

    def release(self, reservation_id: UUID) -> None:
        if reservation_id in self.reservations:
            self._released(reservation_id)

    def expire(self, reservation_id: UUID, now: datetime) -> None:
        if reservation_id in self.lapsed(now):
            self._expired(reservation_id)

    def draw(self, hold_id: UUID, reservation_id: UUID, quantity: int, now: datetime) -> None:
        """Move `quantity` units out of a standing hold (a flash deal's allocation) into a paid
        reservation of their own, which then ships, refunds or returns like any order's.
        Idempotent by `reservation_id`; a lapsed or too small hold refuses, so stock handed to
        a deal can never be drawn more than once over."""
        if reservation_id in self.reservations:
            return
        held = self.reservations.get(hold_id)
        if held is None or hold_id in self.lapsed(now):
            raise InvalidTransition("the deal's allocation has lapsed or was released")
        if not 0 < quantity <= held[0]:
            raise OutOfStock(f"{self.sku}: {quantity} requested, {held[0]} left in the hold")
        self._drawn(hold_id, reservation_id, quantity)

    def give_back(self, hold_id: UUID, unsold: int, now: datetime) -> None:
        """A closed deal's unsold units return to stock at once, not when its hold lapses (up
        to its duration plus a payment window later). What stays covers every claim that may
        still be paid. Once per hold: `unsold` is counted when the deal has closed, and units
        that come back to the deal after this (a claim lapsing) stay until the hold lapses."""
        held = self.reservations.get(hold_id)
        if hold_id in self.given_back or held is None or held[1] is None:
            return  # given back already, gone, or a paid order's (which never lapses)
        if hold_id in self.lapsed(now):
            return
        units = min(unsold, held[0])
        if units > 0:
            self._given_back(hold_id, units)

    def commit(self, reservation_id: UUID, now: datetime) -> None:
        """The parcel left the warehouse: the units leave on-hand stock for good."""
        if reservation_id not in self.reservations or reservation_id in self.lapsed(now):
            raise InvalidTransition("no active reservation to ship from")
        self._committed(reservation_id, self.reservations[reservation_id][0])

    # -- facts ---------------------------------------------------------------------------------
    @event("Received", topic="commerce.Stock.Received")
    def _received(self, quantity: int) -> None:
        self.on_hand += quantity

    @event("Adjusted", topic="commerce.Stock.Adjusted")
    def _adjusted(self, delta: int, reason: str) -> None:
        self.on_hand += delta

    @event("Reserved", topic="commerce.Stock.Reserved")
    def _reserved(self, reservation_id: UUID, quantity: int, until: datetime) -> None:
        self.reservations[reservation_id] = (quantity, until)

    @event("ReservationConfirmed", topic="commerce.Stock.ReservationConfirmed")
    def _confirmed(self, reservation_id: UUID) -> None:
        self.reservations[reservation_id] = (self.reservations[reservation_id][0], None)

    @event("HoldDrawn", topic="commerce.Stock.HoldDrawn")
    def _drawn(self, hold_id: UUID, reservation_id: UUID, quantity: int) -> None:
        left, until = self.reservations[hold_id]
        if left == quantity:
            del self.reservations[hold_id]
        else:
            self.reservations[hold_id] = (left - quantity, until)
        self.reservations[reservation_id] = (quantity, None)

    @event("HoldGivenBack", topic="commerce.Stock.HoldGivenBack")
    def _given_back(self, hold_id: UUID, quantity: int) -> None:
        left, until = self.reservations[hold_id]
        if left == quantity:
            del self.reservations[hold_id]
        else:
            self.reservations[hold_id] = (left - quantity, until)
        self.given_back.add(hold_id)

    @event("ReservationReleased", topic="commerce.Stock.ReservationReleased")
    def _released(self, reservation_id: UUID) -> None:
        del self.reservations[reservation_id]

    @event("ReservationExpired", topic="commerce.Stock.ReservationExpired")
    def _expired(self, reservation_id: UUID) -> None:
        del self.reservations[reservation_id]

    @event("Committed", topic="commerce.Stock.Committed")
    def _committed(self, reservation_id: UUID, quantity: int) -> None:
        del self.reservations[reservation_id]
        self.on_hand -= quantity


class BuyerAnnualQuota(Aggregate):
    """CBEC spend of one buyer identity in one calendar year (26,000 CNY by default).

    Holds behave like stock reservations: an unpaid order's hold lapses with its reservation, so
    an expired order stops counting against the buyer at once, sweeper or not.
    """

    TOPIC = "commerce.BuyerAnnualQuota"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.BuyerAnnualQuota.Created"

    @event("Opened", topic="commerce.BuyerAnnualQuota.Opened")
    def __init__(self, identity_hash: str, year: int) -> None:
        self.identity_hash = identity_hash
        self.year = year
        self.holds = Holds()

    def used_fen(self, now: datetime) -> int:
        return self.holds.live_total(now)

    def hold(self, order_id: UUID, amount_fen: int, until: datetime) -> None:
        self._held(order_id, amount_fen, until)

    def confirm(self, order_id: UUID, now: datetime) -> None:
        held = self.holds.get(order_id)
        if held and held[1] is not None and held[1] <= now:
            raise InvalidTransition("the hold lapsed before payment")
        if held:
            self._confirmed(order_id)

    def release(self, order_id: UUID) -> None:
        if order_id in self.holds:
            self._released(order_id)

    @event("Held", topic="commerce.BuyerAnnualQuota.Held")
    def _held(self, order_id: UUID, amount_fen: int, until: datetime) -> None:
        self.holds[order_id] = (amount_fen, until)

    @event("HoldConfirmed", topic="commerce.BuyerAnnualQuota.HoldConfirmed")
    def _confirmed(self, order_id: UUID) -> None:
        self.holds[order_id] = (self.holds[order_id][0], None)

    @event("HoldReleased", topic="commerce.BuyerAnnualQuota.HoldReleased")
    def _released(self, order_id: UUID) -> None:
        del self.holds[order_id]
