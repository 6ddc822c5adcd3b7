"""Order endpoints: buyers place and cancel; merchants fulfil; admins stand in for payment and
customs until those contexts land."""

from __future__ import annotations

from uuid import uuid4

from litestar import Controller, Response, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.params import FromPath, JSONBody

from commerce.api import responses as out
from commerce.api import schemas
from commerce.api.auth import allow
from commerce.api.common import Cursor, PageLimit, answer, body_uuid, page, path_uuid
from commerce.api.deps import Caller, IdemKey, Runtime
from commerce.domain.coupons import CouponTerms
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.identity import validate_resident_id
from commerce.domain.orders import Order
from commerce.representations import order_view
from commerce.services import fulfilment, ordering
from commerce.services.access import ADMIN, BUYER, MERCHANT, require_order_access


def _listed_status(item: dict, now_iso: str) -> dict:
    if item["status"] == "placed" and item["pay_before"] <= now_iso:
        return item | {"status": "expired"}
    return item


async def _coupon(runtime: Runtime, ref: schemas.CouponRef) -> CouponTerms:
    session_id = body_uuid(ref.session_id, "coupon.session_id")
    coupon_id = body_uuid(ref.coupon_id, "coupon.coupon_id")
    terms = await runtime.coupons(session_id, coupon_id) if runtime.coupons else None
    if terms is None:
        raise InvalidInput("no such coupon in this live session", field="coupon")
    return terms


class OrderController(Controller):
    path = "/orders"
    tags = ("orders",)

    @post("/", status_code=201, guards=[allow(BUYER)])
    async def place_order(
        self,
        data: JSONBody[schemas.PlaceOrder],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.Order]:
        """Place an order: stock is reserved until `pay_before`, priced in CNY with CBEC tax.

        The buyer's real name and resident ID are checked (check digit included) and kept only
        masked and hashed. A `promo_code` of this merchant takes its percent off the goods
        before tax; so does a live `coupon` its amount or percent, within its quantity and
        per-buyer limit. Send an `Idempotency-Key` to retry safely.
        """
        identity = ordering.identify(runtime.cfg, data.identity.name, data.identity.resident_id)
        coupon = await _coupon(runtime, data.coupon) if data.coupon else None
        order_id = idempotency.resource_id("order") if idempotency else uuid4()
        result = await runtime.writer.submit(
            ordering.place_order,
            runtime.cfg,
            idempotency,
            principal.id,
            body_uuid(data.merchant_id, "merchant_id"),
            [(line.sku, line.quantity) for line in data.lines],
            identity,
            {f: getattr(data.address, f) for f in data.address.__struct_fields__},
            None,
            order_id,
            data.payment_provider,
            data.promo_code,
            coupon,
            probe=ordering.probe_ids(runtime.cfg, idempotency, identity),
        )
        if not result.replayed:
            # Sealed and stored in the next vault batch, off the answer's path: should it be
            # lost to a crash, the buyer confirms it again (PUT .../customs/identity).
            runtime.vault.put_soon(
                order_id, data.identity.name, validate_resident_id(data.identity.resident_id)
            )
            await runtime.tell_coupon_moved(result.body.get("coupon_id"))
        return answer(result)

    @get("/", guards=[allow(BUYER, MERCHANT)])
    async def list_orders(
        self,
        principal: Caller,
        runtime: Runtime,
        cursor: Cursor = None,
        limit: PageLimit = 50,
    ) -> out.OrderPage:
        """A buyer's own orders, or a merchant's; newest first."""
        column = "buyer_id" if principal.kind == BUYER else "merchant_id"
        now_iso = runtime.cfg.clock().isoformat()
        return await page(
            runtime,
            "orders",
            {column: str(principal.id)},
            cursor,
            limit,
            decorate=lambda item: _listed_status(item, now_iso),
        )

    @get("/{order_id:str}", guards=[allow(ADMIN, BUYER, MERCHANT)])
    async def get_order(
        self,
        order_id: FromPath[str],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        order = await runtime.read(path_uuid(order_id, "order"), Order)
        if order is None:
            raise NotFound("no such order", field="order_id")
        require_order_access(principal, order.merchant_id, order.buyer_id)
        return order_view(order, runtime.cfg.clock())

    async def _act(self, runtime: Runtime, use_case, *args) -> dict:  # type: ignore[no-untyped-def]
        return await runtime.writer.submit(use_case, runtime.cfg, *args)

    @put("/{order_id:str}/customs/identity", status_code=204, guards=[allow(BUYER)])
    async def confirm_identity(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.Identity],
        principal: Caller,
        runtime: Runtime,
    ) -> None:
        """The buyer confirms their real-name identity again for the customs declaration (only
        needed if redcart no longer holds it). It must be the identity the order was placed with."""
        oid = path_uuid(order_id, "order")
        order = await runtime.read(oid, Order)
        if order is None:
            raise NotFound("no such order", field="order_id")
        require_order_access(principal, order.merchant_id, order.buyer_id)
        identity = ordering.identify(runtime.cfg, data.name, data.resident_id)
        if identity.identity_hash != order.identity["identity_hash"]:
            raise InvalidInput("is not the identity this order was placed with",
                               field="identity.resident_id")  # fmt: skip
        rid = validate_resident_id(data.resident_id)
        await sync_to_thread(runtime.vault.put, oid, data.name, rid)

    @post("/{order_id:str}/cancel", status_code=200, guards=[allow(ADMIN, BUYER, MERCHANT)])
    async def cancel(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.CancelOrder],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        """Cancel an unpaid order (its buyer or merchant); the stock returns at once."""
        oid = path_uuid(order_id, "order")
        view = await self._act(runtime, fulfilment.cancel_order, principal, oid, data.reason)
        await runtime.tell_coupon_moved(view.get("coupon_id"))  # its use is free again
        return view

    @post("/{order_id:str}/mark-paid", status_code=200, guards=[allow(ADMIN)])
    async def mark_paid(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.MarkPaid],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        """Record a payment (admin, until gateways report it). Idempotent by payment_ref."""
        oid = path_uuid(order_id, "order")
        return await self._act(
            runtime, fulfilment.mark_paid, principal, oid, data.payment_ref, data.amount_fen
        )

    @post("/{order_id:str}/customs/declare", status_code=200, guards=[allow(ADMIN)])
    async def declare_customs(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.DeclareCustoms],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        """Operator override: record a declaration filed outside redcart. Merchants file the
        three documents at POST /orders/{id}/customs/declaration, which checks they match."""
        oid = path_uuid(order_id, "order")
        return await self._act(
            runtime, fulfilment.declare_customs, principal, oid, data.declaration_ref
        )

    @post("/{order_id:str}/customs/clear", status_code=200, guards=[allow(ADMIN)])
    async def clear_customs(
        self,
        order_id: FromPath[str],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        """Customs cleared the order (simulated customs response); the payer's clear identity,
        kept only for the declaration, is erased."""
        oid = path_uuid(order_id, "order")
        cleared = await self._act(runtime, fulfilment.clear_customs, principal, oid)
        await sync_to_thread(runtime.vault.erase, oid)
        return cleared

    @post("/{order_id:str}/customs/reject", status_code=200, guards=[allow(ADMIN)])
    async def reject_customs(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.RejectCustoms],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        oid = path_uuid(order_id, "order")
        return await self._act(runtime, fulfilment.reject_customs, principal, oid, data.reason)

    @post("/{order_id:str}/ship", status_code=200, guards=[allow(ADMIN, MERCHANT)])
    async def ship(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.ShipOrder],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        oid = path_uuid(order_id, "order")
        return await self._act(
            runtime, fulfilment.ship_order, principal, oid, data.carrier, data.tracking_no
        )

    @post("/{order_id:str}/deliver", status_code=200, guards=[allow(ADMIN, MERCHANT)])
    async def deliver(
        self,
        order_id: FromPath[str],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        oid = path_uuid(order_id, "order")
        return await self._act(runtime, fulfilment.deliver_order, principal, oid)

    @post("/{order_id:str}/refunds", status_code=200, guards=[allow(ADMIN, MERCHANT)])
    async def refund(
        self,
        order_id: FromPath[str],
        data: JSONBody[schemas.RefundOrder],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Order:
        """Refund all or part of a paid order; a full refund before shipment returns the stock."""
        oid = path_uuid(order_id, "order")
        return await self._act(
            runtime,
            fulfilment.refund_order,
            principal,
            oid,
            data.refund_ref,
            data.amount_fen,
            data.reason,
        )
