from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.domain.allocation import InsufficientStock, StockOption, allocate


def bonded(warehouse_id: str, available: int) -> StockOption:
    return StockOption(warehouse_id=warehouse_id, mode="bonded", available=available)


def direct(warehouse_id: str, available: int) -> StockOption:
    return StockOption(warehouse_id=warehouse_id, mode="direct_mail", available=available)


def test_bonded_before_direct_mail_even_when_direct_mail_has_more() -> None:
    options = [direct("tokyo", 100), bonded("ningbo", 3)]
    assert allocate(2, options) == (("ningbo", 2),)
    assert allocate(5, options) == (("ningbo", 3), ("tokyo", 2))


def test_within_a_mode_fullest_first_then_by_id() -> None:
    options = [bonded("b", 5), bonded("a", 5), bonded("c", 9), direct("z", 4), direct("y", 4)]
    assert allocate(9, options) == (("c", 9),)
    assert allocate(12, options) == (("c", 9), ("a", 3))
    assert allocate(23, options) == (("c", 9), ("a", 5), ("b", 5), ("y", 4))


def test_empty_warehouses_are_skipped() -> None:
    assert allocate(1, [bonded("empty", 0), direct("osaka", 1)]) == (("osaka", 1),)


def test_result_does_not_depend_on_option_order() -> None:
    options = [bonded("b", 5), bonded("a", 5), direct("z", 4), bonded("c", 2)]
    assert allocate(11, options) == allocate(11, list(reversed(options)))


def test_insufficient_stock_allocates_nothing() -> None:
    with pytest.raises(InsufficientStock) as caught:
        allocate(8, [bonded("a", 3), direct("b", 4), bonded("c", 0)])
    assert (caught.value.requested, caught.value.available) == (8, 7)
    assert isinstance(caught.value, ValueError)


def test_no_options_is_insufficient_stock() -> None:
    with pytest.raises(InsufficientStock):
        allocate(1, [])


@pytest.mark.parametrize("quantity", [0, -1])
def test_quantity_must_be_positive(quantity: int) -> None:
    with pytest.raises(ValueError, match="quantity"):
        allocate(quantity, [bonded("a", 5)])


@pytest.mark.parametrize(
    "options",
    [
        [StockOption("a", "air", 5)],
        [bonded("a", -1)],
        [bonded("a", 1), direct("a", 1)],
    ],
)
def test_malformed_options_are_rejected(options: list[StockOption]) -> None:
    with pytest.raises(ValueError, match=r"stock option|more than once"):
        allocate(1, options)


unique_options = st.lists(
    st.builds(
        StockOption,
        warehouse_id=st.text(alphabet="abcdefgh", min_size=1, max_size=3),
        mode=st.sampled_from(["bonded", "direct_mail"]),
        available=st.integers(0, 20),
    ),
    max_size=8,
    unique_by=lambda option: option.warehouse_id,
)


@given(st.integers(1, 100), unique_options)
def test_allocation_properties(quantity: int, options: list[StockOption]) -> None:
    total = sum(option.available for option in options)
    if total < quantity:
        with pytest.raises(InsufficientStock):
            allocate(quantity, options)
        return

    allocation = allocate(quantity, options)
    by_id = {option.warehouse_id: option for option in options}
    warehouses = [warehouse_id for warehouse_id, _ in allocation]

    assert sum(units for _, units in allocation) == quantity
    assert len(warehouses) == len(set(warehouses))
    for warehouse_id, units in allocation:
        assert 1 <= units <= by_id[warehouse_id].available

    taken_direct = sum(units for wid, units in allocation if by_id[wid].mode == "direct_mail")
    if taken_direct:
        bonded_available = sum(o.available for o in options if o.mode == "bonded")
        taken_bonded = sum(units for wid, units in allocation if by_id[wid].mode == "bonded")
        assert taken_bonded == bonded_available

    assert allocate(quantity, list(reversed(options))) == allocation
