"""The order side of a payment notification: applied once, whatever arrives how often."""

from __future__ import annotations

from uuid import UUID

import pytest

from commerce.domain.errors import InvalidInput, NotFound
from commerce.services import fulfilment
from commerce.services.access import BUYER, Principal
from commerce.services.payments import record_payment


def placed(shop) -> tuple[UUID, int]:  # type: ignore[no-untyped-def]
    body = shop.place(1).body
    return UUID(body["id"]), body["total_fen"]


def pay(shop, order, event_id="evt-1", ref="rc-1", fen=None, currency="CNY"):  # type: ignore[no-untyped-def]
    order_id, total = order
    amount = total if fen is None else fen
    return shop.run(record_payment, "alipay", event_id, order_id, ref, amount, currency)


def test_the_same_notification_pays_the_order_once(shop) -> None:  # type: ignore[no-untyped-def]
    order_id = placed(shop)
    assert pay(shop, order_id)["outcome"] == "paid"
    written = shop.written()
    assert pay(shop, order_id)["outcome"] == "duplicate"
    assert shop.written() == written
    assert pay(shop, order_id, event_id="evt-2")["outcome"] == "already_paid"


def test_a_wrong_amount_or_currency_records_nothing(shop) -> None:  # type: ignore[no-untyped-def]
    order_id = placed(shop)
    written = shop.written()
    with pytest.raises(InvalidInput):
        pay(shop, order_id, fen=1)
    with pytest.raises(InvalidInput):
        pay(shop, order_id, currency="USD")
    assert shop.written() == written


def test_money_for_an_ended_or_otherwise_paid_order_is_due_back(shop) -> None:  # type: ignore[no-untyped-def]
    cancelled = placed(shop)
    shop.run(fulfilment.cancel_order, Principal(BUYER, shop.buyer_id), cancelled[0], "no")
    assert pay(shop, cancelled)["outcome"] == "refund_due"
    paid = placed(shop)
    assert pay(shop, paid, event_id="evt-8", ref="rc-first")["outcome"] == "paid"
    assert pay(shop, paid, event_id="evt-9", ref="rc-second")["outcome"] == "refund_due"


def test_an_unknown_order_is_refused(shop) -> None:  # type: ignore[no-untyped-def]
    from uuid import uuid4

    with pytest.raises(NotFound):
        shop.run(record_payment, "alipay", "evt", uuid4(), "rc", 100, "CNY")
