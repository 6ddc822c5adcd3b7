"""A small random world of domain events for property tests of the read models.

Every operation goes through the real aggregates (so the events are the ones production
writes) and is saved to in-memory Commerce and Livestream applications. Operations the domain
refuses (out of stock, a lapsed hold, a session not live...) are simply skipped.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from hypothesis import strategies as st

from commerce.application import Commerce
from commerce.domain import ids
from commerce.domain.accounts import FxRate
from commerce.domain.errors import DomainError
from commerce.domain.inventory import Stock
from commerce.domain.merchants import Merchant, Product, Warehouse
from commerce.domain.notes import Note
from commerce.domain.orders import Order
from commerce.domain.reviews import Review
from livestream.application import Livestream
from livestream.domain.sessions import LiveSession

TITLES = ["安热沙防晒霜", "Anessa 防晒乳", "雪花秀润颜水", "花王蒸汽眼罩", "La Roche 理肤泉"]
BRANDS = ["Anessa", "花王", "Sulwhasoo"]
OPS = (  # weighted: operations that need others first come up more often
    ["list", "receive", "reserve", "order", "count"] * 3
    + ["confirm", "expire", "review", "note", "start", "pin"] * 2
    + ["revise", "adjust", "release", "commit", "draw", "fx", "refund", "edit", "delete",
       "schedule", "unpin", "end", "cancel"]
)  # fmt: skip


class World:
    def __init__(self) -> None:
        self.commerce = Commerce()  # in-memory (POPO) persistence
        self.live = Livestream()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.products: list[Product] = []
        self.stocks: list[Stock] = []
        self.holds: list[tuple[Stock, UUID]] = []
        self.orders: list[Order] = []
        self.notes: list[Note] = []
        self.sessions: list[LiveSession] = []
        self.merchants = []
        self.warehouses: dict[UUID, list[Warehouse]] = {}
        for name, currency in (("Sakura", "JPY"), ("Seoul", "KRW")):
            merchant = Merchant(id=uuid4(), name=name, home_country="JP",
                                settlement_currency=currency, api_key_hash="x")  # fmt: skip
            own = [
                Warehouse(
                    id=uuid4(),
                    merchant_id=merchant.id,
                    name=f"{name} {kind}",
                    kind=kind,
                    country="CN" if kind == "bonded" else "JP",
                    address="a",
                )
                for kind in ("bonded", "direct_mail")
            ]
            for w in own:
                merchant.register_warehouse(w.id)
            self.merchants.append(merchant)
            self.warehouses[merchant.id] = own
            self.save(merchant, *own)
        self.fx = FxRate(id=ids.fx_rate_id("JPY"), currency="JPY")
        self.fx.set(Decimal("0.05"), "test")
        self.save(self.fx)

    def save(self, *aggregates: Any) -> None:
        commerce = [a for a in aggregates if not isinstance(a, LiveSession)]
        live = [a for a in aggregates if isinstance(a, LiveSession)]
        if commerce:
            self.commerce.save(*commerce)
        if live:
            self.live.save(*live)

    def step(self, data: st.DataObject) -> None:
        op = data.draw(st.sampled_from(OPS))
        self.now += timedelta(seconds=data.draw(st.integers(1, 400)))
        with contextlib.suppress(DomainError):
            getattr(self, f"_{op}")(data)

    def _pick(self, data: st.DataObject, items: list) -> Any:
        if not items:
            raise DomainError("nothing to pick")
        return items[data.draw(st.integers(0, len(items) - 1))]

    # -- catalogue and stock -------------------------------------------------------------------
    def _list(self, data: st.DataObject) -> None:
        merchant = self._pick(data, self.merchants)
        sku = f"SKU-{len(self.products)}"
        product = Product(
            id=ids.product_id(merchant.id, sku), merchant_id=merchant.id, sku=sku,
            title=data.draw(st.sampled_from(TITLES)), brand=data.draw(st.sampled_from(BRANDS)),
            origin_country="JP", hs_code="330499", category="beauty",
            list_price_minor=data.draw(st.integers(100, 90000)),
            currency=merchant.settlement_currency, vat_rate=Decimal("0.13"),
            consumption_tax_rate=Decimal("0"), weight_grams=data.draw(st.integers(10, 3000)),
        )  # fmt: skip
        self.products.append(product)
        stocks = [Stock(id=ids.stock_id(product.id, w.id), merchant_id=merchant.id,
                        product_id=product.id, warehouse_id=w.id, sku=sku)
                  for w in self.warehouses[merchant.id]]  # fmt: skip
        self.stocks += stocks
        self.save(product, *stocks)

    def _revise(self, data: st.DataObject) -> None:
        product = self._pick(data, self.products)
        product.revise({"title": data.draw(st.sampled_from(TITLES)),
                        "list_price_minor": data.draw(st.integers(100, 90000))})  # fmt: skip
        self.save(product)

    def _receive(self, data: st.DataObject) -> None:
        stock = self._pick(data, self.stocks)
        stock.receive(data.draw(st.integers(1, 20)))
        self.save(stock)

    def _adjust(self, data: st.DataObject) -> None:
        stock = self._pick(data, self.stocks)
        stock.adjust(data.draw(st.integers(-5, 5)), "stocktake", self.now)
        self.save(stock)

    def _reserve(self, data: st.DataObject) -> None:
        stock = self._pick(data, [s for s in self.stocks if s.available(self.now) > 0])
        rid = uuid4()
        until = self.now + timedelta(seconds=data.draw(st.integers(1, 1800)))
        stock.reserve(rid, data.draw(st.integers(1, 4)), until, self.now)
        self.holds.append((stock, rid))
        self.save(stock)

    def _hold_op(self, data: st.DataObject, action: str) -> None:
        stock, rid = self._pick(data, [h for h in self.holds if h[1] in h[0].reservations])
        if action == "confirm":
            stock.confirm(rid, self.now)
        elif action == "release":
            stock.release(rid)
        elif action == "expire":
            stock.expire(rid, self.now)
        elif action == "commit":
            stock.commit(rid, self.now)
        else:
            new = uuid4()
            stock.draw(rid, new, data.draw(st.integers(1, 3)), self.now)
            self.holds.append((stock, new))
        self.save(stock)

    def _confirm(self, data: st.DataObject) -> None:
        self._hold_op(data, "confirm")

    def _release(self, data: st.DataObject) -> None:
        self._hold_op(data, "release")

    def _expire(self, data: st.DataObject) -> None:
        self._hold_op(data, "expire")

    def _commit(self, data: st.DataObject) -> None:
        self._hold_op(data, "commit")

    def _draw(self, data: st.DataObject) -> None:
        self._hold_op(data, "draw")

    def _fx(self, data: st.DataObject) -> None:
        self.fx.set(Decimal(data.draw(st.integers(3, 9))) / 100, "test")  # JPY; KRW has none
        self.save(self.fx)

    # -- orders and reviews --------------------------------------------------------------------
    def _order(self, data: st.DataObject) -> None:
        product = self._pick(data, self.products)
        buyer = uuid4() if not self.notes else data.draw(
            st.sampled_from([uuid4(), *(n.author_id for n in self.notes)])
        )  # fmt: skip
        line = {"sku": product.sku, "product_id": str(product.id),
                "quantity": data.draw(st.integers(1, 3))}  # fmt: skip
        order = Order(id=uuid4(), merchant_id=product.merchant_id, buyer_id=buyer, lines=[line],
                      quote={"total_fen": 1000}, identity={}, address={}, fx_rates={},
                      placed_at=self.now, expires_at=self.now + timedelta(minutes=15),
                      stock_ids=[], quota_id=uuid4(), attribution=None)  # fmt: skip
        if data.draw(st.booleans()):
            order.mark_paid("pay", 1000, self.now)
        self.orders.append(order)
        self.save(order)

    def _refund(self, data: st.DataObject) -> None:
        order = self._pick(data, self.orders)
        order.refund(f"r{len(order.refunds)}", data.draw(st.sampled_from([400, 1000])), "x",
                     self.now)  # fmt: skip
        self.save(order)

    def _review(self, data: st.DataObject) -> None:
        order = self._pick(data, self.orders)
        pid = UUID(order.lines[0]["product_id"])
        review = Review(id=ids.review_id(order.id, pid), order_id=order.id, product_id=pid,
                        merchant_id=order.merchant_id, buyer_id=order.buyer_id,
                        stars=data.draw(st.integers(1, 5)), text="", at=self.now)  # fmt: skip
        try:
            self.save(review)
        except Exception:  # reviewed before: the (id, version) key refuses a second one
            return

    # -- notes ---------------------------------------------------------------------------------
    def _tags(self, data: st.DataObject) -> list[UUID]:
        if not self.products:
            return []
        return data.draw(st.lists(st.sampled_from([p.id for p in self.products]), max_size=3))

    def _note(self, data: st.DataObject) -> None:
        title = data.draw(st.sampled_from(TITLES))
        note = Note(id=uuid4(), author_id=uuid4(), title=title, body="好用 #防晒", image_refs=[],
                    product_ids=self._tags(data), hashtags=["防晒"], at=self.now)  # fmt: skip
        self.notes.append(note)
        self.save(note)

    def _edit(self, data: st.DataObject) -> None:
        note = self._pick(data, self.notes)
        if note.edit(note.author_id, note.title + "!", "新的 #好物", [], self._tags(data),
                     ["好物"], self.now):  # fmt: skip
            self.save(note)

    def _delete(self, data: st.DataObject) -> None:
        note = self._pick(data, self.notes)
        note.delete(note.author_id, self.now)
        self.save(note)

    def _count(self, data: st.DataObject) -> None:
        note = self._pick(data, self.notes)
        counts = st.integers(-2, 30)
        deltas = {k: data.draw(counts) for k in ("views", "likes", "saves", "shares", "comments")}
        if note.live and note.count(deltas, self.now, str(uuid4())):
            self.save(note)

    # -- live sessions -------------------------------------------------------------------------
    def _schedule(self, data: st.DataObject) -> None:
        merchant = self._pick(data, self.merchants)
        starts = self.now + timedelta(minutes=data.draw(st.integers(0, 600)))
        session = LiveSession.schedule(host_merchant_id=merchant.id, title="开播",
                                       starts_at=starts, now=self.now)  # fmt: skip
        self.sessions.append(session)
        self.save(session)

    def _session_op(self, data: st.DataObject, action: str) -> None:
        wanted = {"start": "scheduled", "cancel": "scheduled"}.get(action, "live")
        session = self._pick(data, [s for s in self.sessions if s.status == wanted])
        if action in ("pin", "unpin"):
            own = [p for p in self.products if p.merchant_id == session.host_merchant_id]
            getattr(session, action)(self._pick(data, own).id, self.now)
        else:
            getattr(session, action)(self.now)
        self.save(session)

    def _start(self, data: st.DataObject) -> None:
        self._session_op(data, "start")

    def _pin(self, data: st.DataObject) -> None:
        self._session_op(data, "pin")

    def _unpin(self, data: st.DataObject) -> None:
        self._session_op(data, "unpin")

    def _end(self, data: st.DataObject) -> None:
        self._session_op(data, "end")

    def _cancel(self, data: st.DataObject) -> None:
        self._session_op(data, "cancel")
