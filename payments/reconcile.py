"""Reconciliation: our payment ledger against what each gateway says, and settling stuck ones.

Notifications can be lost (a provider gives up after its retry schedule; our endpoint was down).
The gateway's query is the source of truth: a payment the gateway has taken but we still show
pending is applied through the same exactly-once path as a webhook (its receipt id is derived
from the gateway's own trade reference, so a webhook that turns up later finds it already paid);
one the gateway closed is closed here too; anything else that disagrees is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.port import PaymentGatewayError, PaymentStatus
from payments.records import Payment
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
            state = await gateway.query_payment(payment.out_trade_no)
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
