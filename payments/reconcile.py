"""Reconciliation: our payment ledger against what each gateway says, and settling stuck ones.

Notifications can be lost (a provider gives up after its retry schedule; our endpoint was down).
The gateway's query is the source of truth: a payment the gateway has taken but we still show
pending is applied through the same exactly-once path as a webhook (its receipt id is derived
from the gateway's own trade reference, so a webhook that turns up later finds it already paid);
one the gateway closed is closed here too; anything else that disagrees is reported.

The daily bill is the second witness (``compare_bills``): it lists what the provider actually
booked on a day, so it also catches payments the ledger never heard of, which no query of our own
trade numbers can find.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import httpx

from payments.port import (
    BillLine,
    NotificationKind,
    PaymentGatewayError,
    PaymentStatus,
    UnsupportedOperation,
)
from payments.records import Payment, gateway_ref
from payments.runtime import PaymentsRuntime


@dataclass(frozen=True)
class Finding:
    out_trade_no: str
    provider: str
    ours: str
    theirs: str
    action: str  # "settled", "closed", "mismatch: …", "unreachable: …", "ok"


def all_payments(runtime: PaymentsRuntime) -> list[Payment]:
    """Every payment stream, from the Payments application's notification log."""
    recorder, found, start = runtime.app.recorder, [], 0
    while True:
        notes = recorder.select_notifications(
            start, 500, topics=("payments.Payment.Requested",), inclusive_of_start=False
        )
        if not notes:
            return found
        for note in notes:
            payment = runtime.app.repository.get(note.originator_id)
            if isinstance(payment, Payment):
                found.append(payment)
        start = notes[-1].id


async def reconcile(runtime: PaymentsRuntime, payments: list[Payment]) -> list[Finding]:
    findings = []
    for payment in payments:
        gateway = runtime.gateways.get(payment.provider)
        if gateway is None:
            continue
        try:
            state = await gateway.query_payment(gateway_ref(payment))
        except PaymentGatewayError as exc:
            findings.append(Finding(payment.out_trade_no, payment.provider, payment.status,
                                    "?", f"unreachable: {exc}"))  # fmt: skip
            continue
        theirs = state.status.value
        action = "ok"
        if state.amount_minor != payment.amount_fen or state.currency != payment.currency:
            action = (
                f"mismatch: gateway {state.amount_minor} {state.currency}, "
                f"ours {payment.amount_fen} {payment.currency}"
            )
        elif state.status is PaymentStatus.SUCCEEDED and payment.status == "pending":
            outcome = await runtime.record_payment(
                payment.provider, f"query:{state.provider_payment_ref or payment.out_trade_no}",
                payment.order_id, payment.out_trade_no, state.amount_minor, state.currency,
            )  # fmt: skip
            if outcome["outcome"] in ("paid", "already_paid", "duplicate"):
                await runtime.update(payment.out_trade_no, _succeed)
            action = f"settled ({outcome['outcome']})"
        elif state.status is PaymentStatus.CLOSED and payment.status == "pending":
            await runtime.update(payment.out_trade_no, _close)
            action = "closed"
        elif (state.status is PaymentStatus.SUCCEEDED) != (payment.status == "succeeded") and not (
            payment.status == "refunded" or state.status is PaymentStatus.REFUNDED
        ):
            action = f"mismatch: gateway {theirs}, ours {payment.status}"
        findings.append(Finding(payment.out_trade_no, payment.provider, payment.status, theirs,
                                action))  # fmt: skip
    return findings


# Alipay and WeChat Pay close their bills at Beijing midnight (China keeps no daylight saving).
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
BOOKED = ("succeeded", "refunded")  # ledger states in which the gateway holds (some of) the money


async def compare_bills(
    runtime: PaymentsRuntime,
    payments: list[Payment],
    bill_date: dt.date,
    *,
    zone: dt.tzinfo = SHANGHAI,
) -> list[Finding]:
    """The day's bill of every gateway that has one against our Payment streams.

    Returns only disagreements ("mismatch: …", or "unreachable: …" when a bill could not be
    fetched), so an empty list means the day reconciles; gateways without ``fetch_daily_bill``
    (Stripe) are skipped. Billed lines are checked against the streams' current state. The other
    way round, "booked that day" is when *we* recorded it: a Succeeded / Refunded event dated
    ``bill_date`` in ``zone``. Keeping it that simple has one known artefact: a payment billed
    just before midnight but recorded by us after it (a late webhook, a ``reconcile`` run) is
    reported as "in the ledger, not in the bill" against the next day's bill.
    """
    findings: list[Finding] = []
    for provider, gateway in runtime.gateways.items():
        fetch = getattr(gateway, "fetch_daily_bill", None)
        if fetch is None:
            continue
        try:
            lines = await fetch(bill_date)
        except UnsupportedOperation:
            continue
        except (PaymentGatewayError, httpx.HTTPError) as exc:
            findings.append(Finding("*", provider, "?", "?", f"unreachable: {exc}"))
            continue
        ours = {p.out_trade_no: p for p in payments if p.provider == provider}
        booked = await asyncio.to_thread(_booked_on, runtime, list(ours.values()), bill_date, zone)
        findings += _compare_bill(provider, lines, ours, *booked)
    return findings


def _booked_on(
    runtime: PaymentsRuntime, payments: list[Payment], day: dt.date, zone: dt.tzinfo
) -> tuple[set[str], set[tuple[str, str]]]:
    """Trade numbers paid, and (trade number, refund number) pairs refunded, on ``day``."""
    paid: set[str] = set()
    refunded: set[tuple[str, str]] = set()
    for payment in payments:
        first, last = (t.astimezone(zone).date() for t in (payment.created_on, payment.modified_on))
        if not first <= day <= last:
            continue  # no event of this stream can fall on the day
        for event in runtime.app.events.get(payment.id):
            if event.timestamp.astimezone(zone).date() != day:
                continue
            if isinstance(event, Payment.Succeeded):
                paid.add(payment.out_trade_no)
            elif isinstance(event, Payment.Refunded):
                refunded.add((payment.out_trade_no, event.out_refund_no))
    return paid, refunded


def _compare_bill(
    provider: str,
    lines: list[BillLine],
    ours: dict[str, Payment],
    paid_on_day: set[str],
    refunded_on_day: set[tuple[str, str]],
) -> list[Finding]:
    found: list[Finding] = []

    def mismatch(out_trade_no: str, theirs: str, what: str) -> None:
        payment = ours.get(out_trade_no)
        status = payment.status if payment else "missing"
        found.append(Finding(out_trade_no, provider, status, theirs, f"mismatch: {what}"))

    billed_payments: set[str] = set()
    billed_refunds: set[tuple[str, str]] = set()
    for line in lines:
        payment, theirs = ours.get(line.out_trade_no), f"{line.amount_minor} {line.currency}"
        if line.kind is NotificationKind.PAYMENT:
            billed_payments.add(line.out_trade_no)
            if payment is None or payment.status not in BOOKED:
                mismatch(line.out_trade_no, f"billed {theirs}", "in the bill, not in the ledger")
            elif (payment.amount_fen, payment.currency) != (line.amount_minor, line.currency):
                ours_text = f"{payment.amount_fen} {payment.currency}"
                mismatch(line.out_trade_no, f"billed {theirs}", f"bill {theirs}, ours {ours_text}")
            continue
        refund_no = line.out_refund_no or ""
        billed_refunds.add((line.out_trade_no, refund_no))
        ours_fen = payment.refunds.get(refund_no) if payment else None
        if ours_fen is None:
            what = f"refund {refund_no} in the bill, not in the ledger"
            mismatch(line.out_trade_no, f"refund {theirs}", what)
        elif ours_fen != line.amount_minor or payment.currency != line.currency:
            what = f"refund {refund_no}: bill {theirs}, ours {ours_fen} {payment.currency}"
            mismatch(line.out_trade_no, f"refund {theirs}", what)
    for out_trade_no in sorted(paid_on_day - billed_payments):
        mismatch(out_trade_no, "not billed", "in the ledger, not in the bill")
    for out_trade_no, refund_no in sorted(refunded_on_day - billed_refunds):
        mismatch(out_trade_no, "not billed", f"refund {refund_no} in the ledger, not in the bill")
    return found


def _succeed(payment: Payment) -> bool:
    if payment.status != "pending":
        return False
    payment.succeed("reconciliation", "settled by query")
    return True


def _close(payment: Payment) -> bool:
    if payment.status != "pending":
        return False
    payment.close("closed at the gateway (reconciliation)")
    return True
