"""An order's life, driven through the real use cases on an in-memory (POPO) Commerce app.

Each scenario starts from a shop built with the catalogue use cases (a merchant with a bonded and
a direct-mail warehouse, products, stock and a JPY rate), places orders with `place_order` and
moves them on with the ordering use cases, under a clock the test moves by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from commerce.application import Commerce
from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    LimitBreached,
    NotFound,
    OutOfStock,
)
from commerce.domain.identity import resident_id_check_char
from commerce.domain.inventory import Stock
from commerce.domain.orders import Order
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.services import catalog, fulfilment, ordering
from commerce.services.access import ADMIN, BUYER, MERCHANT, Principal
from commerce.services.idempotency import Answer, Idempotency

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
VALID_ID = "11010519491231002X"
NAME = "张伟明"  # the buyer's name as on the resident id card
ADDRESS = {
    "recipient": "李小红",  # who receives the parcel: a shipping detail, kept as given
    "mobile": "13800138000",
    "province": "上海市",
    "city": "上海市",
    "district": "黄浦区",
    "street": "南京东路 100 号",
    "postcode": "200001",
}
AN_ADMIN = Principal(ADMIN)


def resident_id(birth: str = "19800101", sequence: str = "123", region: str = "310101") -> str:
    body = region + birth + sequence
    return body + resident_id_check_char(body)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class Shop:
    """A merchant ready to sell, and the handles a test needs to act and to look."""

    app: Commerce
    writer: GroupCommitWriter
    cfg: CommerceConfig
    clock: Clock
    merchant_id: UUID = field(init=False)
    bonded: UUID = field(init=False)
    direct: UUID = field(init=False)
    buyer_id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        self.merchant_id = UUID(
            self.run(catalog.onboard_merchant, None, "Sakura", "JP", "JPY").body["id"]
        )
        self.bonded = self.warehouse("Ningbo", "bonded", "CN")
        self.direct = self.warehouse("Tokyo", "direct_mail", "JP")
        self.run(catalog.set_fx_rate, "JPY", Decimal("0.05"), "admin")

    # -- acting --
    def run(self, command: Callable[..., Any], *args: Any) -> Any:
        return self.writer.execute(command, self.cfg, *args)

    def warehouse(self, name: str, kind: str, country: str) -> UUID:
        answer = self.run(catalog.open_warehouse, None, self.merchant_id, name, kind, country, "x")
        return UUID(answer.body["id"])

    def product(self, sku: str, price_jpy: int, bonded: int = 0, direct: int = 0) -> UUID:
        fields = {
            "sku": sku,
            "title": f"{sku} title",
            "brand": "Anessa",
            "origin_country": "JP",
            "hs_code": "3304990099",
            "category": "beauty",
            "list_price_minor": price_jpy,
            "vat_rate": Decimal("0.13"),
            "consumption_tax_rate": Decimal("0"),  # CBEC tax is then exactly 9.1%
            "weight_grams": 90,
        }
        product_id = UUID(self.run(catalog.list_product, None, self.merchant_id, fields).body["id"])
        for warehouse, quantity in ((self.bonded, bonded), (self.direct, direct)):
            if quantity:
                self.receive(sku, warehouse, quantity)
        return product_id

    def receive(self, sku: str, warehouse: UUID, quantity: int) -> None:
        product_id = ids.product_id(self.merchant_id, sku)
        self.run(catalog.receive_stock, self.merchant_id, product_id, warehouse, quantity)

    def place(
        self,
        quantity: int = 1,
        sku: str = "SUN-50",
        *,
        buyer_id: UUID | None = None,
        name: str = NAME,
        rid: str = VALID_ID,
        idem: Idempotency | None = None,
    ) -> Answer:
        return self.run(
            ordering.place_order,
            idem,
            buyer_id or self.buyer_id,
            self.merchant_id,
            [(sku, quantity)],
            ordering.identify(self.cfg, name, rid),
            ADDRESS,
        )

    def order_id(self, quantity: int = 1, sku: str = "SUN-50", **kwargs: Any) -> UUID:
        return UUID(self.place(quantity, sku, **kwargs).body["id"])

    # -- who --
    @property
    def buyer(self) -> Principal:
        return Principal(BUYER, self.buyer_id)

    @property
    def merchant(self) -> Principal:
        return Principal(MERCHANT, self.merchant_id)

    # -- looking --
    def order(self, order_id: UUID) -> Order:
        return self.app.repository.get(order_id)

    def stock(self, sku: str, warehouse: UUID) -> Stock:
        return self.app.repository.get(
            ids.stock_id(ids.product_id(self.merchant_id, sku), warehouse)
        )

    def available(self, sku: str = "SUN-50") -> int:
        return sum(self.stock(sku, w).available(self.clock.now) for w in (self.bonded, self.direct))

    def written(self) -> int:
        return self.app.recorder.max_notification_id() or 0


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def shop(clock: Clock) -> Iterator[Shop]:
    app = Commerce(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    writer = GroupCommitWriter(app).start()
    cfg = CommerceConfig(secret_key=b"k", clock=lambda: clock.now)
    shop = Shop(app, writer, cfg, clock)
    shop.product("SUN-50", price_jpy=3000, bonded=5, direct=20)
    try:
        yield shop
    finally:
        writer.stop()


# -- the lifecycle steps, as the roles that may take them ----------------------------------------


def pay(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.mark_paid, AN_ADMIN, oid, f"pay-{oid}", shop.order(oid).total_fen)


def declare(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.declare_customs, shop.merchant, oid, "D-1")


def clear(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.clear_customs, AN_ADMIN, oid)


def reject(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.reject_customs, AN_ADMIN, oid, "invoice missing")


def ship(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.ship_order, shop.merchant, oid, "SF", "SF123")


def deliver(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.deliver_order, shop.merchant, oid)


def cancel(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.cancel_order, shop.buyer, oid, "changed my mind")


def refund_one_fen(shop: Shop, oid: UUID) -> None:
    shop.run(fulfilment.refund_order, shop.merchant, oid, f"r-{uuid4()}", 1, "goodwill")


def refund_all(shop: Shop, oid: UUID) -> None:
    order = shop.order(oid)
    left = order.total_fen - order.refunded_fen
    shop.run(fulfilment.refund_order, shop.merchant, oid, "r-all", left, "returned")


def lapse(shop: Shop, oid: UUID) -> None:
    shop.clock.advance(TTL)


def record_expiry(shop: Shop, oid: UUID) -> None:
    assert shop.run(fulfilment.expire_order, oid) is True


PATHS: dict[str, list[Callable[[Shop, UUID], None]]] = {
    "placed": [],
    "paid": [pay],
    "customs_declared": [pay, declare],
    "customs_cleared": [pay, declare, clear],
    "customs_rejected": [pay, declare, reject],
    "shipped": [pay, declare, clear, ship],
    "delivered": [pay, declare, clear, ship, deliver],
    "refunded": [pay, refund_all],
    "cancelled": [cancel],
    "expired": [lapse],  # derived at read time, nothing recorded
    "expired, recorded": [lapse, record_expiry],
}
REFUNDABLE = {"paid", "customs_declared", "customs_cleared", "customs_rejected"}
REFUNDABLE |= {"shipped", "delivered"}
ACTIONS: dict[str, tuple[Callable[[Shop, UUID], None], set[str]]] = {
    "cancel": (cancel, {"placed"}),
    "declare_customs": (declare, {"paid", "customs_rejected"}),
    "clear_customs": (clear, {"customs_declared"}),
    "reject_customs": (reject, {"customs_declared"}),
    "ship": (ship, {"customs_cleared"}),
    "deliver": (deliver, {"shipped"}),
    "refund": (refund_one_fen, REFUNDABLE),
}


def order_in(shop: Shop, status: str) -> UUID:
    oid = shop.order_id(2)
    for step in PATHS[status]:
        step(shop, oid)
    assert shop.order(oid).status(shop.clock.now) == status.split(",")[0]
    return oid


# -- the happy path ------------------------------------------------------------------------------


def test_an_order_goes_from_placed_to_delivered_and_ships_its_reserved_units(shop: Shop) -> None:
    oid = shop.order_id(3)
    assert shop.available() == 25 - 3
    for step in (pay, declare, clear, ship, deliver):
        shop.clock.advance(timedelta(minutes=1))
        step(shop, oid)

    order = shop.order(oid)
    assert order.status(shop.clock.now) == "delivered"
    assert [status for status, _ in order.history] == [
        "placed",
        "paid",
        "customs_declared",
        "customs_cleared",
        "shipped",
        "delivered",
    ]
    assert [at for _, at in order.history] == [T0 + timedelta(minutes=m) for m in range(6)]
    assert order.payment_ref == f"pay-{oid}"
    assert order.customs["declaration_ref"] == "D-1"
    assert order.shipment["tracking_no"] == "SF123"
    bonded = shop.stock("SUN-50", shop.bonded)
    assert (bonded.on_hand, bonded.reservations) == (2, {})  # committed: gone for good
    assert shop.available() == 25 - 3
    quota = shop.app.repository.get(order.quota_id)
    assert quota.used_fen(shop.clock.now + timedelta(days=100)) == order.quote["dutiable_fen"]


def test_paying_makes_the_holds_permanent(shop: Shop) -> None:
    oid = shop.order_id(2)
    pay(shop, oid)
    shop.clock.advance(timedelta(days=2))
    assert shop.order(oid).status(shop.clock.now) == "paid"
    assert shop.available() == 25 - 2
    assert shop.run(fulfilment.expire_order, oid) is False


# -- allocation and price ------------------------------------------------------------------------


def test_bonded_stock_goes_first_and_the_rest_splits_to_direct_mail(shop: Shop) -> None:
    shop.product("MASK", price_jpy=3000, bonded=2, direct=10)
    body = shop.place(3, "MASK").body

    assert body["lines"][0]["allocations"] == [
        {"warehouse_id": str(shop.bonded), "quantity": 2},
        {"warehouse_id": str(shop.direct), "quantity": 1},
    ]
    assert shop.stock("MASK", shop.bonded).available(T0) == 0
    assert shop.stock("MASK", shop.direct).available(T0) == 9
    assert shop.order(UUID(body["id"])).stock_ids == [
        shop.stock("MASK", shop.bonded).id,
        shop.stock("MASK", shop.direct).id,
    ]


def test_an_order_bonded_stock_can_fill_ships_as_one_bonded_parcel(shop: Shop) -> None:
    body = shop.place(2).body
    assert body["lines"][0]["allocations"] == [{"warehouse_id": str(shop.bonded), "quantity": 2}]
    assert [s["mode"] for s in body["quote"]["shipments"]] == ["bonded"]
    assert shop.stock("SUN-50", shop.direct).available(T0) == 20


def test_the_landed_price_is_in_fen_per_shipment_with_freight_and_cbec_tax(shop: Shop) -> None:
    shop.product("MASK", price_jpy=3000, bonded=2, direct=10)
    body = shop.place(3, "MASK").body
    quote = body["quote"]

    # 3,000 JPY at 0.05 CNY/JPY is 150 CNY = 15,000 fen a unit. Freight per parcel: bonded
    # 800 + 200 per started kg, direct mail 3,000 + 1,500. Tax: 13% VAT x 70% = 9.1% of
    # goods + freight, rounded half up (1,774.5 -> 1,775).
    bonded, direct = quote["shipments"]
    assert (bonded["mode"], bonded["customs_mode"]) == ("bonded", "1210")
    assert (direct["mode"], direct["customs_mode"]) == ("direct_mail", "9610")
    assert (bonded["goods_fen"], bonded["freight_fen"], bonded["tax_fen"]) == (30_000, 1_000, 2_821)
    assert (direct["goods_fen"], direct["freight_fen"], direct["tax_fen"]) == (15_000, 4_500, 1_775)
    assert bonded["total_fen"] == 33_821 and direct["total_fen"] == 21_275
    assert quote["goods_fen"] == 45_000
    assert quote["freight_fen"] == 5_500
    assert quote["tax_fen"] == 4_596
    assert quote["dutiable_fen"] == 50_500
    assert quote["total_fen"] == body["total_fen"] == 55_096
    assert body["currency"] == "CNY"
    assert body["fx_rates"] == {"JPY": "0.05"}
    line = body["lines"][0]
    assert (line["unit_price_minor"], line["currency"], line["quantity"]) == (3000, "JPY", 3)


def test_an_order_larger_than_all_stock_is_refused_and_nothing_is_written(shop: Shop) -> None:
    before = shop.written()
    with pytest.raises(OutOfStock) as refused:
        shop.place(26)
    assert refused.value.field == "lines[0].quantity"
    assert refused.value.extra["available"] == 25
    assert shop.written() == before


def test_an_unknown_sku_or_merchant_is_refused(shop: Shop) -> None:
    with pytest.raises(InvalidInput) as refused:
        shop.place(1, "NOPE")
    assert refused.value.field == "lines[0].sku"
    with pytest.raises(NotFound):
        shop.run(
            ordering.place_order,
            None,
            shop.buyer_id,
            uuid4(),
            [("SUN-50", 1)],
            ordering.identify(shop.cfg, NAME, VALID_ID),
            ADDRESS,
        )


# -- CBEC limits ---------------------------------------------------------------------------------


def test_an_order_exactly_at_the_single_order_limit_is_allowed(shop: Shop) -> None:
    shop.product("RING", price_jpy=99_800, bonded=1)  # 4,990 CNY + 10 CNY freight = 5,000 CNY
    body = shop.place(1, "RING").body
    assert body["quote"]["dutiable_fen"] == 500_000


def test_an_order_above_the_single_order_limit_is_refused_and_nothing_is_written(
    shop: Shop,
) -> None:
    shop.product("RING", price_jpy=99_801, bonded=1)  # 0.05 CNY too much
    before = shop.written()
    with pytest.raises(LimitBreached) as refused:
        shop.place(1, "RING")
    assert refused.value.extra == {"rule": "cbec_order_limit"}
    assert refused.value.field == "lines"
    assert shop.written() == before
    assert shop.stock("RING", shop.bonded).available(T0) == 1


def cream_shop(shop: Shop) -> int:
    """A product just under the order limit: 4,500 CNY + 10 CNY freight a unit. Returns fen."""
    shop.product("CREAM", price_jpy=90_000, bonded=30)
    return 451_000


def test_the_annual_limit_counts_every_order_of_one_identity_whichever_account(
    shop: Shop,
) -> None:
    dutiable = cream_shop(shop)
    accounts = [uuid4(), uuid4()]
    placed = [shop.order_id(1, "CREAM", buyer_id=accounts[n % 2]) for n in range(5)]
    quota_ids = {shop.order(oid).quota_id for oid in placed}
    assert len(quota_ids) == 1  # 5 x 4,510 = 22,550 CNY of 26,000, all on one quota
    before = shop.written()

    with pytest.raises(LimitBreached) as refused:
        shop.place(1, "CREAM", buyer_id=uuid4())  # a third account, the same person
    assert refused.value.extra == {"rule": "cbec_annual_limit"}
    assert shop.written() == before
    assert shop.app.repository.get(quota_ids.pop()).used_fen(T0) == 5 * dutiable

    other = shop.order(shop.order_id(1, "CREAM", buyer_id=accounts[0], rid=resident_id()))
    assert shop.app.repository.get(other.quota_id).used_fen(T0) == dutiable  # other person


def test_cancelling_or_letting_an_order_expire_gives_back_its_share_of_the_annual_limit(
    shop: Shop,
) -> None:
    cream_shop(shop)
    first, *paid_later = [shop.order_id(1, "CREAM") for _ in range(5)]
    with pytest.raises(LimitBreached):
        shop.place(1, "CREAM")

    cancel(shop, first)
    unpaid = shop.order_id(1, "CREAM")  # the cancelled order's share was free again at once
    for oid in paid_later:
        pay(shop, oid)
    with pytest.raises(LimitBreached):
        shop.place(1, "CREAM")

    shop.clock.advance(TTL)  # the unpaid order lapses; no sweeper has run
    assert shop.order(unpaid).recorded_status == "placed"
    shop.place(1, "CREAM")
    with pytest.raises(LimitBreached):  # paid orders keep counting
        shop.place(1, "CREAM")


def test_the_annual_limit_starts_again_on_the_chinese_new_year(shop: Shop) -> None:
    cream_shop(shop)
    shop.clock.now = datetime(2025, 12, 31, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    for _ in range(5):
        pay(shop, shop.order_id(1, "CREAM"))
    with pytest.raises(LimitBreached):
        shop.place(1, "CREAM")
    shop.clock.now = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    shop.place(1, "CREAM")


# -- the buyer's identity ------------------------------------------------------------------------


def test_the_identity_is_kept_only_masked_and_hashed(shop: Shop) -> None:
    oid = shop.order_id(1, rid="11010519491231002x")  # as typed, lowercase x
    pay(shop, oid)
    order = shop.order(oid)

    assert order.identity["name_masked"] == "张**"
    assert order.identity["resident_id_masked"] == "110105********002X"
    assert len(order.identity["identity_hash"]) == 64
    assert order.identity["identity_hash"] != hashlib.sha256(VALID_ID.encode()).hexdigest()
    assert set(order.identity) == {"name_masked", "resident_id_masked", "identity_hash"}
    secrets = [VALID_ID, VALID_ID.lower(), "19491231", NAME, "伟明"]
    needles = [s.encode() for s in secrets] + [json.dumps(s)[1:-1].encode() for s in secrets]
    notifications = shop.app.recorder.select_notifications(1, 10_000)
    assert any(n.originator_id == oid for n in notifications)
    # the search does see clear text: the parcel's recipient is stored as given
    assert any(ADDRESS["recipient"].encode() in n.state for n in notifications)
    for notification in notifications:
        for needle in needles:
            assert needle not in notification.state, (notification.topic, needle)


def test_the_same_person_is_the_same_quota_however_the_id_is_typed(shop: Shop) -> None:
    a = shop.order(shop.order_id(1, rid=VALID_ID))
    b = shop.order(shop.order_id(1, rid=" 110105 19491231 002x "))
    c = shop.order(shop.order_id(1, rid=resident_id()))
    assert a.quota_id == b.quota_id != c.quota_id
    assert a.identity["identity_hash"] == b.identity["identity_hash"]


def test_an_invalid_resident_id_is_refused_without_echoing_it(shop: Shop) -> None:
    before = shop.written()
    with pytest.raises(InvalidInput) as refused:
        shop.place(1, rid="110105194912310021")
    assert refused.value.field == "identity.resident_id"
    assert "110105194912310021" not in refused.value.detail
    assert shop.written() == before


# -- idempotency ---------------------------------------------------------------------------------


def test_the_same_request_again_gets_the_same_answer_and_writes_nothing(shop: Shop) -> None:
    idem = Idempotency(principal=shop.buyer.name, key="key-1", fingerprint="fp-1")
    first = shop.place(2, idem=idem)
    written = shop.written()

    again = shop.place(2, idem=idem)
    assert (again.replayed, again.status_code, again.body) == (True, 201, first.body)
    assert first.replayed is False
    assert shop.written() == written
    assert shop.available() == 25 - 2
    assert UUID(first.body["id"]) == idem.resource_id("order")

    cold = GroupCommitWriter(shop.app).start()  # a fresh writer reads the record from the store
    try:
        from_store = cold.execute(
            ordering.place_order,
            shop.cfg,
            idem,
            shop.buyer_id,
            shop.merchant_id,
            [("SUN-50", 2)],
            ordering.identify(shop.cfg, NAME, VALID_ID),
            ADDRESS,
        )
    finally:
        cold.stop()
    assert (from_store.replayed, from_store.body) == (True, first.body)
    assert shop.written() == written


def test_the_same_key_with_a_different_request_is_refused(shop: Shop) -> None:
    shop.place(2, idem=Idempotency(shop.buyer.name, "key-1", "fp-1"))
    written = shop.written()
    with pytest.raises(IdempotencyKeyReused) as refused:
        shop.place(3, idem=Idempotency(shop.buyer.name, "key-1", "fp-2"))
    assert refused.value.field == "Idempotency-Key"
    assert shop.written() == written


def test_a_refused_request_leaves_its_key_free_for_the_retry(shop: Shop) -> None:
    idem = Idempotency(shop.buyer.name, "key-1", "fp-1")
    with pytest.raises(OutOfStock):
        shop.place(30, idem=idem)
    shop.receive("SUN-50", shop.bonded, 5)
    answer = shop.place(30, idem=idem)
    assert (answer.replayed, answer.status_code) == (False, 201)
    assert UUID(answer.body["id"]) == idem.resource_id("order")


def test_keys_are_scoped_to_whoever_sent_them(shop: Shop) -> None:
    mine = shop.place(1, idem=Idempotency(shop.buyer.name, "key-1", "fp-1"))
    other_buyer = uuid4()
    theirs = shop.place(
        1, buyer_id=other_buyer, idem=Idempotency(f"buyer:{other_buyer}", "key-1", "fp-1")
    )
    assert not theirs.replayed
    assert theirs.body["id"] != mine.body["id"]


# -- payment -------------------------------------------------------------------------------------


def test_the_same_payment_reported_twice_is_recorded_once(shop: Shop) -> None:
    oid = shop.order_id(1)
    total = shop.order(oid).total_fen
    shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-1", total)
    written = shop.written()
    view = shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-1", total)
    assert view["status"] == "paid" and view["payment_ref"] == "pay-1"
    assert shop.written() == written


def test_a_second_different_payment_is_refused(shop: Shop) -> None:
    oid = shop.order_id(1)
    total = shop.order(oid).total_fen
    shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-1", total)
    written = shop.written()
    with pytest.raises(Conflict):
        shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-2", total)
    assert shop.written() == written
    assert shop.order(oid).payment_ref == "pay-1"


def test_a_payment_after_expiry_is_refused(shop: Shop) -> None:
    oid = shop.order_id(1)
    total = shop.order(oid).total_fen
    shop.clock.advance(TTL)
    with pytest.raises(InvalidTransition) as refused:
        shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-1", total)
    assert refused.value.extra == {"status": "expired", "action": "mark paid"}


def test_a_payment_one_instant_before_expiry_is_accepted(shop: Shop) -> None:
    oid = shop.order_id(1)
    shop.clock.advance(TTL - timedelta(microseconds=1))
    pay(shop, oid)
    shop.clock.advance(timedelta(days=1))
    assert shop.order(oid).status(shop.clock.now) == "paid"


@pytest.mark.parametrize("off_by", [-1, 1])
def test_a_payment_of_the_wrong_amount_is_refused(shop: Shop, off_by: int) -> None:
    oid = shop.order_id(1)
    written = shop.written()
    with pytest.raises(InvalidInput) as refused:
        shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-1", shop.order(oid).total_fen + off_by)
    assert refused.value.field == "amount_fen"
    assert shop.written() == written
    assert shop.order(oid).status(T0) == "placed"


def test_a_payment_reference_must_not_be_blank(shop: Shop) -> None:
    oid = shop.order_id(1)
    with pytest.raises(InvalidInput) as refused:
        shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "  ", shop.order(oid).total_fen)
    assert refused.value.field == "payment_ref"


# -- ending before payment: cancel and expiry ----------------------------------------------------


def test_cancelling_a_placed_order_returns_its_stock_at_once(shop: Shop) -> None:
    oid = shop.order_id(4)
    assert shop.available() == 21
    cancel(shop, oid)
    assert shop.order(oid).status(T0) == "cancelled"
    assert shop.available() == 25
    assert shop.stock("SUN-50", shop.bonded).reservations == {}


def test_an_unpaid_order_is_expired_the_moment_its_deadline_passes_without_any_event(
    shop: Shop,
) -> None:
    oid = shop.order_id(3)
    version = shop.order(oid).version
    shop.clock.advance(TTL - timedelta(microseconds=1))
    assert shop.order(oid).status(shop.clock.now) == "placed"
    shop.clock.advance(timedelta(microseconds=1))

    order = shop.order(oid)
    assert order.status(shop.clock.now) == "expired"
    assert (order.recorded_status, order.version) == ("placed", version)
    assert shop.available() == 25  # the stock came back with it


def test_recording_an_expiry_writes_it_on_the_order_stock_and_quota(shop: Shop) -> None:
    oid = shop.order_id(3)
    assert shop.run(fulfilment.expire_order, oid) is False  # not yet due
    shop.clock.advance(TTL)
    assert shop.run(fulfilment.expire_order, oid) is True

    order = shop.order(oid)
    assert order.recorded_status == "expired"
    assert order.history[-1] == ("expired", T0 + TTL)
    stock_events = shop.app.recorder.select_events(order.stock_ids[0])
    assert stock_events[-1].topic == "commerce.Stock.ReservationExpired"
    assert shop.stock("SUN-50", shop.bonded).reservations == {}
    quota = shop.app.repository.get(order.quota_id)
    assert quota.holds == {}
    written = shop.written()
    assert shop.run(fulfilment.expire_order, oid) is False  # recorded once
    assert shop.written() == written


def test_the_order_expire_method_returns_whether_it_recorded_anything(shop: Shop) -> None:
    order = shop.order(shop.order_id(1))
    assert order.expire(T0 + TTL - timedelta(microseconds=1)) is False
    assert order.expire(T0 + TTL) is True
    assert order.expire(T0 + TTL) is False
    assert [type(e).__name__ for e in order.collect_events()] == ["Expired"]


# -- customs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_customs_rejection_must_say_why(shop: Shop, reason: str) -> None:
    oid = order_in(shop, "customs_declared")
    written = shop.written()
    with pytest.raises(InvalidInput) as refused:
        shop.run(fulfilment.reject_customs, AN_ADMIN, oid, reason)
    assert refused.value.field == "reason"
    assert shop.written() == written


def test_a_rejected_declaration_can_be_declared_again_and_cleared(shop: Shop) -> None:
    oid = order_in(shop, "customs_rejected")
    assert shop.order(oid).customs["reason"] == "invoice missing"
    shop.run(fulfilment.declare_customs, shop.merchant, oid, "D-2")
    clear(shop, oid)
    order = shop.order(oid)
    assert order.status(T0) == "customs_cleared"
    assert order.customs["declaration_ref"] == "D-2"


# -- refunds -------------------------------------------------------------------------------------


def test_partial_refunds_add_up_and_the_last_one_refunds_the_order(shop: Shop) -> None:
    oid = order_in(shop, "paid")
    total = shop.order(oid).total_fen
    shop.run(fulfilment.refund_order, shop.merchant, oid, "r-1", 1_000, "scratched")
    assert shop.order(oid).status(T0) == "paid"
    assert shop.order(oid).refunded_fen == 1_000
    assert shop.available() == 23  # a partial refund keeps the goods sold

    with pytest.raises(InvalidInput) as refused:
        shop.run(fulfilment.refund_order, shop.merchant, oid, "r-2", total, "too much")
    assert refused.value.field == "amount_fen"

    shop.run(fulfilment.refund_order, shop.merchant, oid, "r-2", total - 1_000, "returned")
    order = shop.order(oid)
    assert order.status(T0) == "refunded"
    assert order.refunds == {"r-1": 1_000, "r-2": total - 1_000}
    assert shop.available() == 25  # fully refunded before shipment: stock returns
    assert shop.app.repository.get(order.quota_id).used_fen(T0) == 0


def test_a_refund_reported_twice_is_recorded_once(shop: Shop) -> None:
    oid = order_in(shop, "paid")
    shop.run(fulfilment.refund_order, shop.merchant, oid, "r-1", 1_000, "scratched")
    written = shop.written()
    shop.run(fulfilment.refund_order, shop.merchant, oid, "r-1", 1_000, "scratched")
    assert shop.written() == written
    assert shop.order(oid).refunded_fen == 1_000


@pytest.mark.parametrize("amount", [0, -1])
def test_a_refund_must_be_positive(shop: Shop, amount: int) -> None:
    oid = order_in(shop, "paid")
    with pytest.raises(InvalidInput) as refused:
        shop.run(fulfilment.refund_order, shop.merchant, oid, "r-1", amount, "x")
    assert refused.value.field == "amount_fen"


def test_a_full_refund_before_shipment_says_the_stock_should_return(shop: Shop) -> None:
    order = shop.order(order_in(shop, "customs_cleared"))
    assert order.refund("r-1", order.total_fen - 1, "partial", T0) is False
    assert order.refund("r-2", 1, "the rest", T0) is True
    assert order.refund("r-2", 1, "the rest", T0) is False  # known ref: nothing more happens
    assert [type(e).__name__ for e in order.collect_events()] == ["Refunded", "Refunded"]


def test_a_full_refund_after_shipment_leaves_the_stock_shipped(shop: Shop) -> None:
    oid = order_in(shop, "shipped")
    order = shop.order(oid)
    assert order.refund("r-1", order.total_fen, "lost in the post", T0) is False

    refund_all(shop, oid)
    assert shop.order(oid).status(T0) == "refunded"
    assert shop.available() == 23
    assert shop.stock("SUN-50", shop.bonded).on_hand == 3


# -- every other move is refused -----------------------------------------------------------------

MOVES = [
    (status, action, status.split(",")[0] in allowed)
    for status in PATHS
    for action, (_, allowed) in ACTIONS.items()
]


@pytest.mark.parametrize(
    ("status", "action", "allowed"),
    MOVES,
    ids=[f"{action}-when-{status.replace(', ', '-')}" for status, action, _ in MOVES],
)
def test_only_the_lifecycle_allows_a_move(
    shop: Shop, status: str, action: str, allowed: bool
) -> None:
    oid = order_in(shop, status)
    version, written = shop.order(oid).version, shop.written()
    step, _ = ACTIONS[action]
    if allowed:
        step(shop, oid)
        assert shop.order(oid).version > version
        return
    with pytest.raises(InvalidTransition) as refused:
        step(shop, oid)
    assert refused.value.extra["status"] == status.split(",")[0]
    assert shop.written() == written


@pytest.mark.parametrize("status", ["cancelled", "expired", "expired, recorded"])
def test_an_order_that_ended_unpaid_cannot_be_paid(shop: Shop, status: str) -> None:
    oid = order_in(shop, status)
    written = shop.written()
    with pytest.raises(InvalidTransition):
        shop.run(fulfilment.mark_paid, AN_ADMIN, oid, "pay-1", shop.order(oid).total_fen)
    assert shop.written() == written


# -- who may see and touch an order --------------------------------------------------------------


def test_another_buyer_sees_no_such_order(shop: Shop) -> None:
    oid = shop.order_id(1)
    stranger = Principal(BUYER, uuid4())
    with pytest.raises(NotFound):
        shop.run(fulfilment.cancel_order, stranger, oid, "mine now")
    assert shop.order(oid).status(T0) == "placed"


def test_another_merchant_sees_no_such_order(shop: Shop) -> None:
    oid = order_in(shop, "paid")
    rival = Principal(MERCHANT, uuid4())
    for command, args in [
        (fulfilment.declare_customs, ("D-1",)),
        (fulfilment.refund_order, ("r-1", 1, "x")),
        (fulfilment.cancel_order, ("x",)),
    ]:
        with pytest.raises(NotFound):
            shop.run(command, rival, oid, *args)
    assert shop.order(oid).status(T0) == "paid"


def test_only_an_admin_records_payment_and_customs_decisions(shop: Shop) -> None:
    oid = shop.order_id(1)
    total = shop.order(oid).total_fen
    for who in (shop.buyer, shop.merchant):
        with pytest.raises(NotFound):
            shop.run(fulfilment.mark_paid, who, oid, "pay-1", total)
    pay(shop, oid)
    declare(shop, oid)
    with pytest.raises(NotFound):
        shop.run(fulfilment.clear_customs, shop.merchant, oid)
    with pytest.raises(NotFound):
        shop.run(fulfilment.reject_customs, shop.merchant, oid, "no")


def test_a_buyer_cannot_ship_or_refund_their_own_order(shop: Shop) -> None:
    oid = order_in(shop, "customs_cleared")
    with pytest.raises(NotFound):
        shop.run(fulfilment.ship_order, shop.buyer, oid, "SF", "1")
    with pytest.raises(NotFound):
        shop.run(fulfilment.refund_order, shop.buyer, oid, "r-1", 1, "x")


def test_an_unknown_order_is_not_found(shop: Shop) -> None:
    with pytest.raises(NotFound):
        shop.run(fulfilment.cancel_order, AN_ADMIN, uuid4(), "x")
    assert shop.run(fulfilment.expire_order, uuid4()) is False
