from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.domain.pricing import (
    CURRENCY_EXPONENTS,
    CbecPolicy,
    FreightRates,
    InvalidQuoteInput,
    LimitExceeded,
    LineInput,
    Quote,
    ShipmentInput,
    UnknownCurrency,
    allocate_pro_rata,
    cbec_tax_fen,
    check_annual_limit,
    check_order_limit,
    currency_exponent,
    fen_to_yuan_str,
    freight_fen,
    quote_order,
    to_cny_fen,
)

POLICY = CbecPolicy()
FREIGHT = FreightRates()
FX = {"USD": Decimal("7.1"), "JPY": Decimal("0.04825"), "KRW": Decimal("0.0052")}
VAT = Decimal("0.13")
NO_CT = Decimal(0)


def line(
    sku: str = "SKU-1",
    *,
    quantity: int = 1,
    price: int = 10_000,
    currency: str = "USD",
    vat: Decimal = VAT,
    ct: Decimal = NO_CT,
    grams: int = 1_200,
) -> LineInput:
    return LineInput(
        sku=sku,
        quantity=quantity,
        unit_price_minor=price,
        currency=currency,
        vat_rate=vat,
        consumption_tax_rate=ct,
        weight_grams=grams,
    )


def shipment(*lines: LineInput, mode: str = "bonded", warehouse: str = "wh-1") -> ShipmentInput:
    return ShipmentInput(mode=mode, warehouse_id=warehouse, lines=lines)


def quote_of(dutiable_goods_fen: int) -> Quote:
    """A quote whose dutiable value is exactly `dutiable_goods_fen` (no freight)."""
    return Quote(
        shipments=(),
        goods_fen=dutiable_goods_fen,
        freight_fen=0,
        tax_fen=0,
        total_fen=dutiable_goods_fen,
    )


# --- currencies and conversion ------------------------------------------------------------


def test_currency_exponents() -> None:
    for code in ("CNY", "USD", "EUR", "GBP", "HKD", "AUD"):
        assert CURRENCY_EXPONENTS[code] == 2
    assert currency_exponent("JPY") == 0
    assert currency_exponent("KRW") == 0
    assert currency_exponent("KWD") == 3
    assert currency_exponent("SGD") == 2  # not listed: ISO's common default


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "", "12A"])
def test_malformed_currency_is_unknown(code: str) -> None:
    with pytest.raises(UnknownCurrency) as caught:
        currency_exponent(code)
    assert caught.value.currency == code


def test_to_cny_fen() -> None:
    assert to_cny_fen(10_000, "USD", Decimal("7.1")) == 71_000
    assert to_cny_fen(1_234, "CNY", Decimal(1)) == 1_234
    # JPY has no minor unit: 1,234 yen x 0.04825 CNY = 59.5405 CNY = 5,954.05 fen.
    assert to_cny_fen(1_234, "JPY", Decimal("0.04825")) == 5_954
    # KWD has three: 1.000 KWD x 23.5 CNY.
    assert to_cny_fen(1_000, "KWD", Decimal("23.5")) == 2_350


def test_to_cny_fen_rounds_half_up_not_to_even() -> None:
    assert to_cny_fen(10, "USD", Decimal("7.15")) == 72  # 71.5
    assert to_cny_fen(30, "USD", Decimal("7.15")) == 215  # 214.5, banker's would give 214
    assert to_cny_fen(1, "JPY", Decimal("0.04825")) == 5  # 4.825


def test_to_cny_fen_rejects_bad_rates() -> None:
    with pytest.raises(InvalidQuoteInput, match="rate 1"):
        to_cny_fen(100, "CNY", Decimal("7.1"))
    with pytest.raises(InvalidQuoteInput):
        to_cny_fen(100, "USD", Decimal(0))
    with pytest.raises(InvalidQuoteInput):
        to_cny_fen(100, "USD", 7.1)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuoteInput):
        to_cny_fen(100, "USD", Decimal("NaN"))


# --- freight -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "grams", "expected"),
    [
        ("bonded", 0, 800),
        ("bonded", 1, 1_000),
        ("bonded", 1_000, 1_000),
        ("bonded", 1_001, 1_200),
        ("bonded", 1_200, 1_200),
        ("direct_mail", 500, 4_500),
        ("direct_mail", 2_500, 7_500),
    ],
)
def test_freight_charges_started_kilograms(mode: str, grams: int, expected: int) -> None:
    assert freight_fen(mode, grams, FREIGHT) == expected


def test_freight_rejects_unknown_mode_and_negative_weight() -> None:
    with pytest.raises(ValueError, match="mode"):
        freight_fen("air", 100, FREIGHT)
    with pytest.raises(ValueError, match="weight_grams"):
        freight_fen("bonded", -1, FREIGHT)


# --- tax -----------------------------------------------------------------------------------


def test_tax_13_percent_vat_no_consumption_tax_is_9_1_percent() -> None:
    assert cbec_tax_fen(72_200, VAT, NO_CT, POLICY) == 6_570  # 6,570.2
    assert cbec_tax_fen(5_000, VAT, NO_CT, POLICY) == 455
    assert cbec_tax_fen(50, VAT, NO_CT, POLICY) == 5  # 4.55 rounds up


def test_tax_with_consumption_tax() -> None:
    # Cosmetics: 15% consumption tax on a tax-inclusive base, 13% VAT on top, 70% of both.
    # CT = 10,000 x 0.15 / 0.85 = 1,764.70588; VAT = (10,000 + CT) x 0.13 = 1,529.41176;
    # (CT + VAT) x 0.7 = 2,305.88235 -> 2,306 fen (the familiar "23.1%" cosmetics rate).
    assert cbec_tax_fen(10_000, VAT, Decimal("0.15"), POLICY) == 2_306


def test_tax_share_comes_from_policy() -> None:
    assert cbec_tax_fen(10_000, VAT, NO_CT, CbecPolicy(tax_share=Decimal(1))) == 1_300


@pytest.mark.parametrize("rate", [Decimal(1), Decimal("-0.01"), Decimal("Infinity")])
def test_tax_rejects_rates_outside_unit_interval(rate: Decimal) -> None:
    with pytest.raises(InvalidQuoteInput, match="vat_rate"):
        cbec_tax_fen(100, rate, NO_CT, POLICY)
    with pytest.raises(InvalidQuoteInput, match="consumption_tax_rate"):
        cbec_tax_fen(100, VAT, rate, POLICY)


# --- quotes --------------------------------------------------------------------------------


def test_worked_example_usd_bonded() -> None:
    quote = quote_order([shipment(line())], FX, FREIGHT, POLICY)
    (only_shipment,) = quote.shipments
    (only_line,) = only_shipment.lines
    assert only_line.goods_fen == 71_000  # 100.00 USD x 7.1
    assert only_line.freight_fen == 800 + 2 * 200  # 1.2 kg -> 2 started kg
    assert only_line.tax_fen == 6_570  # 9.1% of 72,200
    assert only_line.total_fen == 78_770
    assert quote.dutiable_fen == 72_200
    assert (quote.goods_fen, quote.freight_fen, quote.tax_fen, quote.total_fen) == (
        71_000,
        1_200,
        6_570,
        78_770,
    )
    assert only_shipment.mode == "bonded"
    assert only_shipment.warehouse_id == "wh-1"


def test_jpy_quote() -> None:
    jpy_line = line(quantity=2, price=3_000, currency="JPY", grams=400)
    quote = quote_order([shipment(jpy_line, mode="direct_mail")], FX, FREIGHT, POLICY)
    # 6,000 yen x 0.04825 = 289.50 CNY; 800 g direct mail = 3,000 + 1,500.
    assert quote.goods_fen == 28_950
    assert quote.freight_fen == 4_500
    assert quote.tax_fen == 3_044  # 33,450 x 0.091 = 3,043.95


def test_cny_needs_no_rate_and_weight_is_per_unit() -> None:
    cny_line = line(quantity=3, price=1_000, currency="CNY", grams=400)
    quote = quote_order([shipment(cny_line)], {}, FREIGHT, POLICY)
    assert quote.goods_fen == 3_000
    assert quote.freight_fen == 800 + 2 * 200  # 1,200 g in total


def test_freight_is_split_pro_rata_by_largest_remainder() -> None:
    lines = (
        line("A", price=100, currency="CNY", grams=0),
        line("B", price=100, currency="CNY", grams=0),
        line("C", price=100, currency="CNY", grams=0),
    )
    quote = quote_order([shipment(*lines)], FX, FreightRates(bonded_base_fen=1_000), POLICY)
    assert [q.freight_fen for q in quote.shipments[0].lines] == [334, 333, 333]


def test_each_line_is_taxed_at_its_own_rates() -> None:
    lines = (
        line("food", price=10_000, currency="CNY", vat=Decimal("0.09"), grams=0),
        line("lipstick", price=10_000, currency="CNY", ct=Decimal("0.15"), grams=0),
    )
    quote = quote_order([shipment(*lines)], FX, FreightRates(bonded_base_fen=0), POLICY)
    assert [q.tax_fen for q in quote.shipments[0].lines] == [630, 2_306]


def test_missing_rate_is_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency) as caught:
        quote_order([shipment(line(currency="EUR"))], FX, FREIGHT, POLICY)
    assert caught.value.currency == "EUR"


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        (line(quantity=0), "shipments[0].lines[1].quantity"),
        (line(price=-1), "shipments[0].lines[1].unit_price_minor"),
        (line(grams=-5), "shipments[0].lines[1].weight_grams"),
        (line(vat=Decimal(1)), "shipments[0].lines[1].vat_rate"),
        (line(ct=Decimal("-0.1")), "shipments[0].lines[1].consumption_tax_rate"),
        (line(sku=""), "shipments[0].lines[1].sku"),
    ],
)
def test_invalid_lines_name_the_field(bad_line: LineInput, field: str) -> None:
    with pytest.raises(InvalidQuoteInput) as caught:
        quote_order([shipment(line(), bad_line)], FX, FREIGHT, POLICY)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_invalid_shipments_name_the_field() -> None:
    with pytest.raises(InvalidQuoteInput, match=r"^shipments:"):
        quote_order([], FX, FREIGHT, POLICY)
    with pytest.raises(InvalidQuoteInput, match=r"shipments\[0\]\.lines"):
        quote_order([shipment()], FX, FREIGHT, POLICY)
    with pytest.raises(InvalidQuoteInput, match=r"shipments\[0\]\.mode"):
        quote_order([shipment(line(), mode="air")], FX, FREIGHT, POLICY)


def test_policy_and_freight_rates_validate_themselves() -> None:
    with pytest.raises(InvalidQuoteInput, match="tax_share"):
        CbecPolicy(tax_share=Decimal("1.1"))
    with pytest.raises(InvalidQuoteInput, match="bonded_base_fen"):
        FreightRates(bonded_base_fen=-1)


# --- limits --------------------------------------------------------------------------------


def test_order_limit_message_in_yuan() -> None:
    check_order_limit(quote_of(500_000), POLICY)
    with pytest.raises(LimitExceeded) as caught:
        check_order_limit(quote_of(501_234), POLICY)
    error = caught.value
    assert str(error) == "order value 5,012.34 CNY exceeds the 5,000.00 CNY single-order limit"
    assert (error.rule, error.limit_fen, error.attempted_fen, error.used_fen) == (
        "cbec_order_limit",
        500_000,
        501_234,
        0,
    )
    assert isinstance(error, ValueError)


def test_order_limit_counts_freight() -> None:
    quote = Quote(shipments=(), goods_fen=499_500, freight_fen=600, tax_fen=0, total_fen=500_100)
    with pytest.raises(LimitExceeded):
        check_order_limit(quote, POLICY)


def test_annual_limit_message() -> None:
    with pytest.raises(LimitExceeded) as caught:
        check_annual_limit(2_550_000, 100_000, POLICY)
    error = caught.value
    assert str(error) == (
        "order value 1,000.00 CNY exceeds the 500.00 CNY left of the 26,000.00 CNY annual limit"
        " (25,500.00 CNY already used this year)"
    )
    assert (error.rule, error.limit_fen, error.attempted_fen, error.used_fen) == (
        "cbec_annual_limit",
        2_600_000,
        100_000,
        2_550_000,
    )


@pytest.mark.parametrize(
    ("fen", "text"), [(123_456, "1234.56"), (5, "0.05"), (0, "0.00"), (-5, "-0.05")]
)
def test_fen_to_yuan_str(fen: int, text: str) -> None:
    assert fen_to_yuan_str(fen) == text


# --- properties ----------------------------------------------------------------------------

rates = st.sampled_from([Decimal(0), Decimal("0.06"), Decimal("0.09"), Decimal("0.13")])
consumption_rates = st.sampled_from([Decimal(0), Decimal("0.05"), Decimal("0.15"), Decimal("0.3")])
line_inputs = st.builds(
    LineInput,
    sku=st.text(min_size=1, max_size=8),
    quantity=st.integers(1, 5),
    unit_price_minor=st.integers(0, 500_000),
    currency=st.sampled_from(["CNY", "USD", "JPY", "KRW"]),
    vat_rate=rates,
    consumption_tax_rate=consumption_rates,
    weight_grams=st.integers(0, 5_000),
)
shipment_inputs = st.builds(
    ShipmentInput,
    mode=st.sampled_from(["bonded", "direct_mail"]),
    warehouse_id=st.text(min_size=1, max_size=8),
    lines=st.lists(line_inputs, min_size=1, max_size=5).map(tuple),
)
orders = st.lists(shipment_inputs, min_size=1, max_size=4)


@given(orders)
def test_totals_are_exact_sums_of_parts(order: list[ShipmentInput]) -> None:
    quote = quote_order(order, FX, FREIGHT, POLICY)
    for shipment_input, shipment_quote in zip(order, quote.shipments, strict=True):
        for q in shipment_quote.lines:
            assert q.total_fen == q.goods_fen + q.freight_fen + q.tax_fen
        for name in ("goods_fen", "freight_fen", "tax_fen", "total_fen"):
            assert getattr(shipment_quote, name) == sum(
                getattr(q, name) for q in shipment_quote.lines
            )
        weight = sum(li.weight_grams * li.quantity for li in shipment_input.lines)
        assert shipment_quote.freight_fen == freight_fen(shipment_input.mode, weight, FREIGHT)
    for name in ("goods_fen", "freight_fen", "tax_fen", "total_fen"):
        assert getattr(quote, name) == sum(getattr(s, name) for s in quote.shipments)
    assert quote.total_fen == quote.dutiable_fen + quote.tax_fen


@given(orders)
def test_line_freight_is_within_one_fen_of_its_exact_share(order: list[ShipmentInput]) -> None:
    quote = quote_order(order, FX, FREIGHT, POLICY)
    for shipment_quote in quote.shipments:
        goods = [q.goods_fen for q in shipment_quote.lines]
        if sum(goods) == 0:
            continue
        for q in shipment_quote.lines:
            exact = Fraction(shipment_quote.freight_fen * q.goods_fen, sum(goods))
            assert abs(q.freight_fen - exact) < 1


@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=10))
def test_allocate_pro_rata_sums_exactly(total: int, weights: list[int]) -> None:
    parts = allocate_pro_rata(total, weights)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)


@given(st.integers(0, 10**9), rates, consumption_rates)
def test_tax_is_within_one_fen_of_exact(dutiable: int, vat: Decimal, ct: Decimal) -> None:
    c, v = Fraction(ct), Fraction(vat)
    consumption = dutiable * c / (1 - c)
    exact = (consumption + (dutiable + consumption) * v) * Fraction(POLICY.tax_share)
    assert abs(cbec_tax_fen(dutiable, vat, ct, POLICY) - exact) <= Fraction(1, 2)


@given(st.integers(0, 10**9), st.integers(0, 10**6), rates, consumption_rates)
def test_tax_is_monotone_in_dutiable_value(
    dutiable: int, increase: int, vat: Decimal, ct: Decimal
) -> None:
    assert cbec_tax_fen(dutiable, vat, ct, POLICY) <= cbec_tax_fen(
        dutiable + increase, vat, ct, POLICY
    )


@given(st.integers(0, 10**12))
def test_13_percent_vat_is_9_1_percent_rounded_half_up(dutiable: int) -> None:
    expected = int((Decimal(dutiable) * Decimal("0.091")).quantize(Decimal(1), ROUND_HALF_UP))
    assert cbec_tax_fen(dutiable, VAT, NO_CT, POLICY) == expected


@given(st.integers(0, POLICY.annual_limit_fen))
def test_annual_limit_accepts_exactly_the_limit_and_not_a_fen_more(used: int) -> None:
    remaining = POLICY.annual_limit_fen - used
    check_annual_limit(used, remaining, POLICY)
    with pytest.raises(LimitExceeded) as caught:
        check_annual_limit(used, remaining + 1, POLICY)
    assert caught.value.rule == "cbec_annual_limit"
