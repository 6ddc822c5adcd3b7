"""Starting payments and receiving provider notifications (one webhook endpoint per provider).

Webhooks verify the signature on the raw bytes before reading anything; only then is the
payload trusted, matched to a payment we started, and handed to the order side, which applies
it exactly once (commerce.services.payments.record_payment).
"""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from commerce.api.auth import allow
from commerce.api.deps import Caller
from commerce.api.problems import problem
from commerce.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from commerce.services.access import ADMIN, BUYER, MERCHANT
from payments import responses as out
from payments.port import (
    BadSignature,
    CreatePayment,
    DeclareCustoms,
    DisplayQrCode,
    NotificationKind,
    PaymentGatewayError,
    PaymentStatus,
    RedirectToUrl,
    ReplayedNotification,
    StaleNotification,
    UnsupportedOperation,
    out_trade_no_for,
)
from payments.records import Payment, payment_id
from payments.runtime import PROVIDER_METHODS, PaymentsRuntime

log = logging.getLogger("redcart.payments")
PaymentsDep = NamedDependency[PaymentsRuntime]


class StartPayment(msgspec.Struct, forbid_unknown_fields=True):
    provider: Annotated[str, msgspec.Meta(max_length=32)]


def trade_no(order_id: UUID, provider: str) -> str:
    """One payment attempt per order and provider: a retried start reuses it."""
    return out_trade_no_for(f"{order_id}:{provider}")


def _view(payment: Payment, sandbox_page: str | None) -> dict:
    body = {
        "payment_id": str(payment.id),
        "order_id": str(payment.order_id),
        "provider": payment.provider,
        "method": payment.method,
        "out_trade_no": payment.out_trade_no,
        "amount_fen": payment.amount_fen,
        "currency": payment.currency,
        "status": payment.status,
        "next_action": payment.next_action,
    }
    if sandbox_page:
        body["sandbox_pay_page"] = f"{sandbox_page}/_sandbox/pay/{payment.out_trade_no}"
    return body


@post(
    "/orders/{order_id:str}/payments",
    guards=[allow(BUYER)],
    tags=["payments"],
    opt={"statuses": (502,)},  # the provider refused or did not answer
)
async def start_payment(
    order_id: FromPath[str],
    data: JSONBody[StartPayment],
    principal: Caller,
    payments: PaymentsDep,
) -> Response[out.Payment]:
    """Start paying an order with a provider; answers the buyer's next action (QR or redirect)."""
    gateway = payments.gateways.get(data.provider)
    if gateway is None:
        raise InvalidInput(f"one of {sorted(payments.gateways)}", field="provider")
    try:
        oid = UUID(order_id)
    except ValueError:
        raise NotFound("no such order", field="order_id") from None
    order = await payments.order_for_payment(oid, principal)
    if order["status"] != "placed":
        raise Conflict(f"an order that is {order['status']} cannot be paid", field="order_id")
    try:
        payment, created = await request_payment(
            payments, oid, data.provider, order["total_fen"], order["subject"]
        )
    except PaymentGatewayError as exc:
        return problem(502, "Payment provider refused", str(exc), "provider_error")
    view = _view(payment, payments.sandbox_pages.get(data.provider))
    return Response(view, status_code=201 if created else 200)


async def request_payment(
    payments: PaymentsRuntime, order_id: UUID, provider: str, total_fen: int, subject: str
) -> tuple[Payment, bool]:
    """Ask a gateway to take an order's money (once per order and provider): the payment, and
    whether this call created it. Used by the buyer's start and by the process manager when an
    order was placed with a payment provider chosen."""
    out_trade_no = trade_no(order_id, provider)
    existing = await payments.payment(out_trade_no)
    if existing is not None:
        return existing, False
    command = CreatePayment(
        order_id=str(order_id),
        amount_minor=total_fen,
        currency="CNY",
        method=PROVIDER_METHODS[provider],  # type: ignore[arg-type]
        out_trade_no=out_trade_no,
        subject=subject,
        notify_url=f"{payments.public_url}/webhooks/{provider}",
    )
    started = await payments.gateways[provider].create_payment(command)
    action = started.next_action
    next_action = (
        {"type": "qr_code", "data": action.data} if isinstance(action, DisplayQrCode)
        else {"type": "redirect", "url": action.url} if isinstance(action, RedirectToUrl)
        else None
    )  # fmt: skip
    payment = Payment(
        id=payment_id(out_trade_no),
        order_id=order_id,
        provider=provider,
        method=command.method,
        amount_fen=total_fen,
        currency="CNY",
        out_trade_no=out_trade_no,
        next_action=next_action or {},
        provider_ref=started.provider_payment_ref,
    )
    try:
        await payments.save(payment)
    except IntegrityError:  # a concurrent request for the same attempt won: answer with it
        return (await payments.payment(out_trade_no) or payment), False
    return payment, True


@get("/orders/{order_id:str}/payments", guards=[allow(ADMIN, BUYER, MERCHANT)], tags=["payments"])
async def order_payments(
    order_id: FromPath[str], principal: Caller, payments: PaymentsDep
) -> out.Payments:
    """The payment attempts of an order, one per provider, with their status and refunds."""
    try:
        oid = UUID(order_id)
    except ValueError:
        raise NotFound("no such order", field="order_id") from None
    await payments.order_for_payment(oid, principal)  # 404 unless it is the caller's order
    items = []
    for provider in sorted(payments.gateways):
        payment = await payments.payment(trade_no(oid, provider))
        if payment is not None:
            items.append(
                _view(payment, payments.sandbox_pages.get(provider))
                | {"refunded_fen": sum(payment.refunds.values()), "flags": payment.flags}
            )
    return {"items": items}


class CustomsDeclaration(msgspec.Struct, forbid_unknown_fields=True):
    customs_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    merchant_customs_no: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    merchant_customs_name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    carrier: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    waybill_no: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    consignee: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


@post(
    "/orders/{order_id:str}/customs/declaration",
    guards=[allow(ADMIN, MERCHANT)],
    tags=["customs"],
    status_code=200,
    opt={"statuses": (502,)},  # the provider refused or did not answer
)
async def declare_to_customs(
    order_id: FromPath[str],
    data: JSONBody[CustomsDeclaration],
    principal: Caller,
    payments: PaymentsDep,
) -> dict:
    """File the three customs documents of a paid order (三单比对): the order itself, the payment
    declaration pushed through the provider that took the money (which checks the payer is the
    buyer), and the carrier's waybill. Matching documents move the order to customs_declared;
    a mismatch is recorded with its reasons and may be filed again."""
    try:
        oid = UUID(order_id)
    except ValueError:
        raise NotFound("no such order", field="order_id") from None
    order = await payments.order_for_payment(oid, principal)
    if order["status"] not in ("paid", "customs_rejected") or not order["payment_ref"]:
        raise Conflict(f"an order that is {order['status']} cannot be declared", field="order_id")
    payment = await payments.payment(order["payment_ref"])
    gateway = payments.gateways.get(payment.provider) if payment else None
    identity = await payments.payer_identity(oid)  # type: ignore[misc]
    if payment is None or gateway is None:
        raise Conflict("the order was not paid through a gateway redcart knows", field="order_id")
    if identity is None:
        raise Conflict(
            "redcart no longer holds the payer's identity for this order; the buyer confirms it"
            " at PUT /orders/{id}/customs/identity",
            field="order_id",
        )
    try:
        declared = await gateway.declare_customs(
            DeclareCustoms(
                out_trade_no=payment.out_trade_no,
                out_request_no=f"{payment.out_trade_no}-customs",
                order_no=str(oid),
                customs_code=data.customs_code,
                merchant_customs_no=data.merchant_customs_no,
                merchant_customs_name=data.merchant_customs_name,
                amount_minor=payment.amount_fen,
                payer_name=identity[0],
                payer_id_number=identity[1],
            )
        )
    except UnsupportedOperation:
        raise Conflict(f"{payment.provider} does not declare payments to customs") from None
    except PaymentGatewayError as exc:
        return problem(502, "Payment provider refused", str(exc), "provider_error")
    payment_document = {
        "provider": payment.provider,
        "declaration_ref": declared.declaration_ref,
        "amount_fen": payment.amount_fen,
        "identity_check": declared.identity_check.value,
    }
    logistics_document = {"carrier": data.carrier, "waybill_no": data.waybill_no,
                          "consignee": data.consignee}  # fmt: skip
    return await payments.file_customs(  # type: ignore[misc]
        principal, oid, data.customs_code, data.merchant_customs_no,
        payment_document, logistics_document,
    )  # fmt: skip


@post("/webhooks/{provider:str}", tags=["payments"], status_code=200)
async def webhook(provider: FromPath[str], request: Request, payments: PaymentsDep) -> Response:
    """A provider's asynchronous notification. Answers exactly what that provider expects."""
    gateway = payments.gateways.get(provider)
    if gateway is None:
        return problem(404, "Not found", f"no payment provider {provider!r}", "not_found")
    raw = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        note = gateway.parse_notification(headers, raw)
    except ReplayedNotification:
        ack = gateway.acknowledgement(True)  # applied when first seen; stop the resends
        return Response(ack.body, status_code=ack.status_code, media_type=ack.content_type)
    except BadSignature:
        return problem(401, "Bad signature", "the notification did not verify", "bad_signature")
    except StaleNotification:
        return problem(400, "Stale notification", "outside the accepted time window", "stale")
    except (PaymentGatewayError, ValueError, KeyError) as exc:
        return problem(400, "Malformed notification", type(exc).__name__, "malformed")
    payment = await payments.payment(note.out_trade_no)
    if payment is None:
        return problem(404, "Unknown payment", "no payment with that out_trade_no", "not_found")
    if note.kind is NotificationKind.REFUND:

        def refunded(p: Payment) -> bool:
            if not note.out_refund_no or note.out_refund_no in p.refunds or not note.refund_minor:
                return False
            p.refund(note.out_refund_no, note.refund_minor, "provider reported")
            return True

        await payments.update(payment.out_trade_no, refunded)
    elif note.status is PaymentStatus.SUCCEEDED:
        if note.amount_minor != payment.amount_fen or note.currency != payment.currency:

            def flagged(p: Payment) -> bool:
                if f"amount:{note.provider_event_id}" in p.flags:
                    return False
                p.flag(f"amount:{note.provider_event_id}", note.provider_event_id)
                return True

            await payments.update(payment.out_trade_no, flagged)
            log.warning("payment %s: amount does not match; not applied", payment.out_trade_no)
            return problem(422, "Amount mismatch", "the paid amount does not match the order",
                           "amount_mismatch")  # fmt: skip
        try:
            outcome = await payments.record_payment(
                provider, note.provider_event_id, payment.order_id, payment.out_trade_no,
                note.amount_minor, note.currency,
            )  # fmt: skip
        except DomainError as exc:
            return problem(422 if isinstance(exc, InvalidInput) else 404, "Not applied",
                           exc.detail, exc.code)  # fmt: skip
        if outcome["outcome"] in ("paid", "already_paid"):

            def succeeded(p: Payment) -> bool:
                if p.status != "pending":
                    return False
                p.succeed(note.provider_event_id, outcome["outcome"])
                return True

            await payments.update(payment.out_trade_no, succeeded)
    ack = gateway.acknowledgement(True)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.content_type)
