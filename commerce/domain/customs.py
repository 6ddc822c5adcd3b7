"""Three-document matching (三单比对) for one order: order, payment and logistics declarations.

Customs accepts a cross-border retail import only when the platform's order, the payment
provider's payment declaration and the carrier's waybill agree: the payer is the buyer, the
amounts are the same, the parcel goes to the order's consignee. The order moves to
customs_declared only when all three are in and match; a mismatch stays visible with its reasons
and the documents can be filed again.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class CustomsFiling(Aggregate):
    TOPIC = "commerce.CustomsFiling"
    id: UUID

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.CustomsFiling.Created"

    @event("Opened", topic="commerce.CustomsFiling.Opened")
    def __init__(self, order_id: UUID, customs_code: str, merchant_customs_no: str) -> None:
        self.order_id = order_id
        self.customs_code = customs_code
        self.merchant_customs_no = merchant_customs_no
        self.documents: dict[str, dict] = {}
        self.verdict: str | None = None
        self.reasons: list[str] = []

    @event("DocumentFiled", topic="commerce.CustomsFiling.DocumentFiled")
    def file(self, kind: str, document: dict, at: datetime) -> None:
        self.documents[kind] = document

    def mismatches(self, order_total_fen: int, consignee: str) -> list[str]:
        """Why the three documents disagree (empty when they match)."""
        order, payment = self.documents.get("order"), self.documents.get("payment")
        logistics = self.documents.get("logistics")
        missing = [k for k, doc in (("order", order), ("payment", payment),
                                    ("logistics", logistics)) if doc is None]  # fmt: skip
        if missing:
            return [f"{kind} declaration missing" for kind in missing]
        reasons = []
        if payment["identity_check"] != "match":
            reasons.append(f"payer identity check: {payment['identity_check']}")
        if payment["amount_fen"] != order["amount_fen"] or order["amount_fen"] != order_total_fen:
            reasons.append("payment amount differs from the order")
        if logistics["consignee"] != consignee:
            reasons.append("waybill consignee differs from the order's recipient")
        return reasons

    @event("Judged", topic="commerce.CustomsFiling.Judged")
    def judge(self, verdict: str, reasons: list[str], at: datetime) -> None:
        self.verdict = verdict  # "matched" or "mismatched"
        self.reasons = reasons
