"""Which warehouses fill an order line.

Bonded stock is already inside China and reaches the buyer in 2-4 days; direct mail crosses the
border per parcel and takes 7-15. So bonded stock is always used up first, and within a mode the
fullest warehouse goes first to keep a line in as few parcels (and freight charges) as we can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BONDED = "bonded"
DIRECT_MAIL = "direct_mail"
# Lower rank is preferred.
_MODE_RANK = {BONDED: 0, DIRECT_MAIL: 1}


@dataclass(frozen=True)
class StockOption:
    """Units of one product a warehouse can ship now."""

    warehouse_id: str
    mode: str  # "bonded" | "direct_mail"
    available: int


class InsufficientStock(ValueError):
    """All warehouses together hold fewer units than asked for; nothing was allocated."""

    def __init__(self, requested: int, available: int) -> None:
        super().__init__(f"requested {requested} units but only {available} are available")
        self.requested = requested
        self.available = available


def _preference(option: StockOption) -> tuple[int, int, str]:
    return (_MODE_RANK[option.mode], -option.available, option.warehouse_id)


def _validate(quantity: int, options: Sequence[StockOption]) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ValueError("quantity must be an integer of at least 1")
    seen: set[str] = set()
    for option in options:
        if option.mode not in _MODE_RANK:
            raise ValueError(f"stock option mode must be one of {', '.join(_MODE_RANK)}")
        if not isinstance(option.available, int) or option.available < 0:
            raise ValueError("stock option available must be a non-negative integer")
        # One warehouse listed twice would be double-counted; that is a caller bug, not stock.
        if option.warehouse_id in seen:
            raise ValueError(f"warehouse {option.warehouse_id!r} is listed more than once")
        seen.add(option.warehouse_id)


def allocate(quantity: int, options: Sequence[StockOption]) -> tuple[tuple[str, int], ...]:
    """Return (warehouse_id, units) pairs in preference order; the units add up to `quantity`.

    Deterministic for the same inputs whatever their order, so a replayed command allocates the
    same way. A line may split across warehouses; all-or-nothing if stock falls short.
    """
    _validate(quantity, options)
    in_stock = sorted((option for option in options if option.available > 0), key=_preference)
    total_available = sum(option.available for option in in_stock)
    if total_available < quantity:
        raise InsufficientStock(requested=quantity, available=total_available)

    allocation: list[tuple[str, int]] = []
    remaining = quantity
    for option in in_stock:
        if remaining == 0:
            break
        taken = min(option.available, remaining)
        allocation.append((option.warehouse_id, taken))
        remaining -= taken
    return tuple(allocation)
