"""Landed CNY price of a cross-border (CBEC) order: goods, freight and CBEC comprehensive tax.

The buyer pays one CNY figure, customs assesses tax on goods plus freight, and the annual
allowance counts that same dutiable value, so all three come out of one quote. Money is integer
minor units throughout; Decimal appears only for rates, and every CNY amount is rounded half-up
to the fen exactly once, from the exact rational value, so no rounding error compounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

CNY = "CNY"
BONDED = "bonded"
DIRECT_MAIL = "direct_mail"
SHIPPING_MODES = (BONDED, DIRECT_MAIL)

ORDER_LIMIT_RULE = "cbec_order_limit"
ANNUAL_LIMIT_RULE = "cbec_annual_limit"

# ISO 4217 minor-unit exponents. Only currencies whose exponent is not 2 strictly need listing,
# but the ones we trade in are spelled out so a reader does not have to know the default.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "AUD": 2,
    "JPY": 0,
    "KRW": 0,
    # Other zero- and three-decimal ISO 4217 currencies: defaulting these to 2 would silently
    # misprice by a factor of 100 or 10.
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "KMF": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}
DEFAULT_CURRENCY_EXPONENT = 2
_CURRENCY_CODE = re.compile(r"[A-Z]{3}", re.ASCII)
_GRAMS_PER_KG = 1000


class UnknownCurrency(ValueError):
    """We cannot turn this currency into fen: the code is malformed or there is no rate for it."""

    def __init__(self, currency: str, reason: str = "no exchange rate to CNY") -> None:
        super().__init__(f"{currency!r}: {reason}")
        self.currency = currency


class InvalidQuoteInput(ValueError):
    """An input to pricing is out of range; `field` is a path such as 'shipments[0].lines[1]'."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LimitExceeded(ValueError):
    """A CBEC allowance would be exceeded; the order cannot clear as a cross-border parcel.

    `attempted_fen` is the dutiable value of the order being placed; for the annual rule
    `used_fen` is what the buyer's identity has already used this calendar year.
    """

    def __init__(
        self, rule: str, message: str, *, limit_fen: int, attempted_fen: int, used_fen: int = 0
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.limit_fen = limit_fen
        self.attempted_fen = attempted_fen
        self.used_fen = used_fen


def _require_int(value: object, field: str, *, minimum: int = 0) -> int:
    # bool is an int subclass; True as a quantity is a bug, not a one.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidQuoteInput(field, "must be an integer")
    if value < minimum:
        raise InvalidQuoteInput(field, f"must be at least {minimum}")
    return value


def _require_rate(
    value: object, field: str, *, upper: int = 1, upper_inclusive: bool = False
) -> Decimal:
    """Rates must be Decimal (never float: 0.13 as a float is not 13%) and finite."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidQuoteInput(field, "must be a finite Decimal")
    if value < 0 or value > upper or (value == upper and not upper_inclusive):
        bracket = "]" if upper_inclusive else ")"
        raise InvalidQuoteInput(field, f"must be within [0, {upper}{bracket}")
    return value


@lru_cache(maxsize=1024)
def _fraction(rate: Decimal) -> Fraction:
    """Rates repeat across every line of every order: convert each once."""
    return Fraction(rate)


def _round_half_up(value: Fraction) -> int:
    """ROUND_HALF_UP (halves away from zero), as Decimal does it, on an exact rational."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


@dataclass(frozen=True)
class FreightRates:
    """Freight per shipment (one warehouse); weight is charged per started kilogram."""

    bonded_base_fen: int = 800
    bonded_per_kg_fen: int = 200
    direct_mail_base_fen: int = 3000
    direct_mail_per_kg_fen: int = 1500

    def __post_init__(self) -> None:
        for name in (
            "bonded_base_fen",
            "bonded_per_kg_fen",
            "direct_mail_base_fen",
            "direct_mail_per_kg_fen",
        ):
            _require_int(getattr(self, name), f"freight.{name}")


@dataclass(frozen=True)
class CbecPolicy:
    """The CBEC retail import regime: tax at a share of the general-trade rate, within limits."""

    tax_share: Decimal = Decimal("0.7")  # CBEC comprehensive tax = 70% of VAT + consumption tax
    order_limit_fen: int = 500_000  # 5,000 CNY per order (dutiable value: goods + freight)
    annual_limit_fen: int = 2_600_000  # 26,000 CNY per buyer identity per calendar year

    def __post_init__(self) -> None:
        _require_rate(self.tax_share, "policy.tax_share", upper_inclusive=True)
        _require_int(self.order_limit_fen, "policy.order_limit_fen")
        _require_int(self.annual_limit_fen, "policy.annual_limit_fen")


@dataclass(frozen=True)
class LineInput:
    """One SKU in a shipment; price and weight are per unit."""

    sku: str
    quantity: int
    unit_price_minor: int
    currency: str
    vat_rate: Decimal
    consumption_tax_rate: Decimal
    weight_grams: int


@dataclass(frozen=True)
class ShipmentInput:
    """The lines leaving one warehouse together: freight is charged once per shipment."""

    mode: str  # "bonded" or "direct_mail"
    warehouse_id: str
    lines: tuple[LineInput, ...]


@dataclass(frozen=True)
class LineQuote:
    sku: str
    quantity: int
    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int


@dataclass(frozen=True)
class ShipmentQuote:
    mode: str
    warehouse_id: str
    lines: tuple[LineQuote, ...]
    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int
    discount_fen: int = 0  # taken off the goods by a promo code; goods_fen is after it


@dataclass(frozen=True)
class Quote:
    shipments: tuple[ShipmentQuote, ...]
    goods_fen: int
    freight_fen: int
    tax_fen: int
    total_fen: int
    discount_fen: int = 0  # taken off the goods by a promo code; goods_fen is after it

    @property
    def dutiable_fen(self) -> int:
        """Customs value for CBEC: goods plus freight (tax itself is not dutiable)."""
        return self.goods_fen + self.freight_fen


def currency_exponent(currency: str) -> int:
    """Minor-unit exponent; well-formed codes we do not list use ISO 4217's common 2."""
    if not isinstance(currency, str) or not _CURRENCY_CODE.fullmatch(currency):
        raise UnknownCurrency(str(currency), "not an ISO 4217 code such as 'JPY'")
    return CURRENCY_EXPONENTS.get(currency, DEFAULT_CURRENCY_EXPONENT)


def _exact_cny_fen(amount_minor: int, currency: str, rate: Decimal) -> Fraction:
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise InvalidQuoteInput("amount_minor", "must be an integer")
    exponent = currency_exponent(currency)
    if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
        raise InvalidQuoteInput(f"fx_rates[{currency}]", "must be a positive finite Decimal")
    if currency == CNY and rate != 1:
        raise InvalidQuoteInput(f"fx_rates[{currency}]", "CNY converts to itself at rate 1")
    fen_per_minor = _fraction(rate) * Fraction(10 ** CURRENCY_EXPONENTS[CNY], 10**exponent)
    return amount_minor * fen_per_minor


def to_cny_fen(amount_minor: int, currency: str, rate: Decimal) -> int:
    """Convert minor units of `currency` to fen; `rate` is CNY per one major unit."""
    return _round_half_up(_exact_cny_fen(amount_minor, currency, rate))


def freight_fen(mode: str, weight_grams: int, rates: FreightRates) -> int:
    """Carriers bill every started kilogram, so 1,001 g costs the same as 2,000 g."""
    _require_int(weight_grams, "weight_grams")
    if mode == BONDED:
        base, per_kg = rates.bonded_base_fen, rates.bonded_per_kg_fen
    elif mode == DIRECT_MAIL:
        base, per_kg = rates.direct_mail_base_fen, rates.direct_mail_per_kg_fen
    else:
        raise InvalidQuoteInput("mode", f"must be one of {', '.join(SHIPPING_MODES)}")
    started_kg = -(-weight_grams // _GRAMS_PER_KG)
    return base + per_kg * started_kg


def _exact_cbec_tax(
    dutiable_fen: int, vat_rate: Decimal, consumption_tax_rate: Decimal, tax_share: Decimal
) -> Fraction:
    dutiable = Fraction(dutiable_fen)
    consumption_rate = _fraction(consumption_tax_rate)
    # Consumption tax is levied on a tax-inclusive base, hence the division by (1 - rate).
    consumption_tax = dutiable * consumption_rate / (1 - consumption_rate)
    vat = (dutiable + consumption_tax) * _fraction(vat_rate)
    return (consumption_tax + vat) * _fraction(tax_share)


def cbec_tax_fen(
    dutiable_fen: int, vat_rate: Decimal, consumption_tax_rate: Decimal, policy: CbecPolicy
) -> int:
    """CBEC comprehensive tax: tariff 0, VAT and consumption tax at `policy.tax_share`.

    Computed exactly and rounded once, so e.g. 13% VAT and no consumption tax is exactly
    round(dutiable x 9.1%).
    """
    _require_int(dutiable_fen, "dutiable_fen")
    _require_rate(vat_rate, "vat_rate")
    _require_rate(consumption_tax_rate, "consumption_tax_rate")
    exact = _exact_cbec_tax(dutiable_fen, vat_rate, consumption_tax_rate, policy.tax_share)
    return _round_half_up(exact)


def allocate_pro_rata(total: int, weights: Sequence[int]) -> tuple[int, ...]:
    """Split `total` in proportion to `weights` so the parts add up to `total` exactly.

    Largest remainder (Hamilton): everyone gets the floor of their exact share, and the few
    units left go to the largest fractional remainders, ties to the earlier weight, so the
    result is deterministic. All-zero weights split evenly.
    """
    if not weights:
        raise ValueError("weights must not be empty")
    if total < 0 or any(weight < 0 for weight in weights):
        raise ValueError("total and weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights = [1] * len(weights)
        weight_sum = len(weights)
    floors = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    left = total - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in by_remainder[:left]:
        floors[index] += 1
    return tuple(floors)


def _validate_line(line: LineInput, field: str) -> None:
    if not isinstance(line.sku, str) or not line.sku:
        raise InvalidQuoteInput(f"{field}.sku", "must not be empty")
    _require_int(line.quantity, f"{field}.quantity", minimum=1)
    _require_int(line.unit_price_minor, f"{field}.unit_price_minor")
    _require_int(line.weight_grams, f"{field}.weight_grams")
    _require_rate(line.vat_rate, f"{field}.vat_rate")
    _require_rate(line.consumption_tax_rate, f"{field}.consumption_tax_rate")


def _rate_for(currency: str, fx_rates: Mapping[str, Decimal]) -> Decimal:
    currency_exponent(currency)  # malformed codes fail here, before the rate lookup
    rate = fx_rates.get(currency)
    if rate is None:
        if currency == CNY:
            return Decimal(1)
        raise UnknownCurrency(currency)
    return rate


def _quote_shipment(
    shipment: ShipmentInput,
    field: str,
    fx_rates: Mapping[str, Decimal],
    rates: FreightRates,
    policy: CbecPolicy,
    percent_off: int = 0,
    line_off: Sequence[int] | None = None,
) -> ShipmentQuote:
    if shipment.mode not in SHIPPING_MODES:
        raise InvalidQuoteInput(f"{field}.mode", f"must be one of {', '.join(SHIPPING_MODES)}")
    if not shipment.lines:
        raise InvalidQuoteInput(f"{field}.lines", "must not be empty")
    for index, line in enumerate(shipment.lines):
        _validate_line(line, f"{field}.lines[{index}]")

    exact_goods = [
        _exact_cny_fen(
            line.unit_price_minor * line.quantity,
            line.currency,
            _rate_for(line.currency, fx_rates),
        )
        for line in shipment.lines
    ]
    # A discount comes off the goods before tax, each line rounded once from its exact value,
    # so the tax is assessed on what the buyer actually pays for the goods.
    kept = Fraction(100 - percent_off, 100)
    goods = [_round_half_up(exact * kept) for exact in exact_goods]
    if line_off is not None:  # an amount off the order, already split over its lines
        goods = [g - off for g, off in zip(goods, line_off, strict=True)]
    discount = sum(_round_half_up(exact) for exact in exact_goods) - sum(goods)
    weight = sum(line.weight_grams * line.quantity for line in shipment.lines)
    shipment_freight = freight_fen(shipment.mode, weight, rates)
    freights = allocate_pro_rata(shipment_freight, goods)

    line_quotes = []
    for line, line_goods, line_freight in zip(shipment.lines, goods, freights, strict=True):
        tax = cbec_tax_fen(
            line_goods + line_freight, line.vat_rate, line.consumption_tax_rate, policy
        )
        line_quotes.append(
            LineQuote(
                sku=line.sku,
                quantity=line.quantity,
                goods_fen=line_goods,
                freight_fen=line_freight,
                tax_fen=tax,
                total_fen=line_goods + line_freight + tax,
            )
        )
    return ShipmentQuote(
        mode=shipment.mode,
        warehouse_id=shipment.warehouse_id,
        lines=tuple(line_quotes),
        goods_fen=sum(q.goods_fen for q in line_quotes),
        freight_fen=sum(q.freight_fen for q in line_quotes),
        tax_fen=sum(q.tax_fen for q in line_quotes),
        total_fen=sum(q.total_fen for q in line_quotes),
        discount_fen=discount,
    )


def quote_order(
    shipments: Sequence[ShipmentInput],
    fx_rates: Mapping[str, Decimal],
    freight: FreightRates,
    policy: CbecPolicy,
    *,
    percent_off: int = 0,
    amount_off_fen: int = 0,
) -> Quote:
    """Price an order line by line; every total is the exact sum of the parts below it.

    Tax is assessed per line on goods plus that line's share of its shipment's freight, so
    lines with different tax rates each bear tax on their own freight share. `percent_off` (a
    promo code) comes off the goods before freight shares and tax are worked out; so does
    `amount_off_fen` (a live coupon), split over the lines in proportion to their goods and
    never more than they cost.
    """
    if not shipments:
        raise InvalidQuoteInput("shipments", "must not be empty")
    _require_int(percent_off, "percent_off")
    _require_int(amount_off_fen, "amount_off_fen")
    if percent_off > 100:
        raise InvalidQuoteInput("percent_off", "must be at most 100")
    if percent_off and amount_off_fen:
        raise InvalidQuoteInput("amount_off_fen", "a quote takes a percent or an amount off")
    offs: list[Sequence[int] | None] = [None] * len(shipments)
    if amount_off_fen:
        offs = _split_amount_off(shipments, fx_rates, amount_off_fen)
    quotes = tuple(
        _quote_shipment(
            shipment, f"shipments[{index}]", fx_rates, freight, policy, percent_off, offs[index]
        )
        for index, shipment in enumerate(shipments)
    )
    return Quote(
        shipments=quotes,
        goods_fen=sum(q.goods_fen for q in quotes),
        freight_fen=sum(q.freight_fen for q in quotes),
        tax_fen=sum(q.tax_fen for q in quotes),
        total_fen=sum(q.total_fen for q in quotes),
        discount_fen=sum(q.discount_fen for q in quotes),
    )


def _split_amount_off(
    shipments: Sequence[ShipmentInput], fx_rates: Mapping[str, Decimal], amount_fen: int
) -> list[Sequence[int] | None]:
    """Each line's part of an amount off, pro rata to its goods: the parts add up to the amount,
    or to all the goods when the amount is more than they cost."""
    listed = []
    for index, shipment in enumerate(shipments):
        for at, line in enumerate(shipment.lines):
            _validate_line(line, f"shipments[{index}].lines[{at}]")
        listed.append([
            _round_half_up(_exact_cny_fen(line.unit_price_minor * line.quantity, line.currency,
                                          _rate_for(line.currency, fx_rates)))
            for line in shipment.lines
        ])  # fmt: skip
    flat = [goods for shipment in listed for goods in shipment]
    if not flat:  # no lines: the shipment's own check says so
        return [None] * len(shipments)
    parts = iter(allocate_pro_rata(min(amount_fen, sum(flat)), flat))
    return [[next(parts) for _ in shipment] for shipment in listed]


def fen_to_yuan_str(fen: int) -> str:
    """Plain decimal yuan ("1234.56") for adapters that want a string, never a float."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"


def _yuan_display(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d} CNY"


def check_order_limit(quote: Quote, policy: CbecPolicy) -> None:
    """Above the single-order limit the parcel cannot clear as CBEC retail import at all."""
    attempted = quote.dutiable_fen
    if attempted > policy.order_limit_fen:
        raise LimitExceeded(
            ORDER_LIMIT_RULE,
            f"order value {_yuan_display(attempted)} exceeds the "
            f"{_yuan_display(policy.order_limit_fen)} single-order limit",
            limit_fen=policy.order_limit_fen,
            attempted_fen=attempted,
        )


def check_annual_limit(used_fen: int, order_fen: int, policy: CbecPolicy) -> None:
    """The annual allowance is per buyer identity, not per account: customs counts it that way."""
    _require_int(used_fen, "used_fen")
    _require_int(order_fen, "order_fen")
    if used_fen + order_fen > policy.annual_limit_fen:
        remaining = max(policy.annual_limit_fen - used_fen, 0)
        raise LimitExceeded(
            ANNUAL_LIMIT_RULE,
            f"order value {_yuan_display(order_fen)} exceeds the "
            f"{_yuan_display(remaining)} left of the {_yuan_display(policy.annual_limit_fen)} "
            f"annual limit ({_yuan_display(used_fen)} already used this year)",
            limit_fen=policy.annual_limit_fen,
            attempted_fen=order_fen,
            used_fen=used_fen,
        )
