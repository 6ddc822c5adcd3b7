"""Provider-neutral trade book behind both sandbox gateways.

Both dialects share one state machine: a trade waits for the simulated buyer, who approves or
declines; paid trades take refunds up to their total; unpaid trades can be closed. The dialect
modules translate these states to ``TRADE_SUCCESS`` / ``SUCCESS`` and friends. Amounts are fen.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class TradeState(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    DECLINED = "declined"
    CLOSED = "closed"


class LedgerError(Exception):
    """A request the real provider would refuse; ``code`` is neutral, dialects map it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class SandboxRefund:
    out_refund_no: str
    refund_ref: str
    amount_minor: int
    created_at: float


@dataclass(slots=True)
class SandboxTrade:
    out_trade_no: str
    provider_ref: str
    amount_minor: int
    currency: str
    subject: str
    notify_url: str | None
    created_at: float
    state: TradeState = TradeState.PENDING
    paid_at: float | None = None
    closed_at: float | None = None
    refunds: list[SandboxRefund] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def refunded_minor(self) -> int:
        return sum(refund.amount_minor for refund in self.refunds)


class TradeBook:
    def __init__(self, ref_prefix: str) -> None:
        self._trades: dict[str, SandboxTrade] = {}
        self._ref_prefix = ref_prefix
        self._counter = itertools.count(1)

    def next_ref(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return f"{self._ref_prefix}{stamp}{next(self._counter):012d}"

    def create(
        self,
        out_trade_no: str,
        amount_minor: int,
        currency: str,
        subject: str,
        notify_url: str | None,
        **extra: Any,
    ) -> SandboxTrade:
        """Idempotent on ``out_trade_no`` with identical parameters, as the providers are."""
        existing = self._trades.get(out_trade_no)
        if existing is not None:
            if existing.state is not TradeState.PENDING:
                raise LedgerError("TRADE_NOT_PENDING", "out_trade_no already paid or closed")
            if (existing.amount_minor, existing.currency) != (amount_minor, currency):
                raise LedgerError("OUT_TRADE_NO_USED", "out_trade_no reused with other amount")
            return existing
        trade = SandboxTrade(
            out_trade_no,
            self.next_ref(),
            amount_minor,
            currency,
            subject,
            notify_url,
            time.time(),
            extra=dict(extra),
        )
        self._trades[out_trade_no] = trade
        return trade

    def get(self, out_trade_no: str) -> SandboxTrade:
        try:
            return self._trades[out_trade_no]
        except KeyError:
            raise LedgerError("TRADE_NOT_EXIST", "no such trade") from None

    def find_refund(self, out_refund_no: str) -> tuple[SandboxTrade, SandboxRefund]:
        for trade in self._trades.values():
            for refund in trade.refunds:
                if refund.out_refund_no == out_refund_no:
                    return trade, refund
        raise LedgerError("REFUND_NOT_EXIST", "no such refund")

    def approve(self, out_trade_no: str) -> SandboxTrade:
        trade = self.get(out_trade_no)
        if trade.state not in (TradeState.PENDING, TradeState.DECLINED):
            raise LedgerError("TRADE_NOT_PENDING", f"trade is {trade.state}")
        trade.state, trade.paid_at = TradeState.PAID, time.time()
        return trade

    def decline(self, out_trade_no: str) -> SandboxTrade:
        trade = self.get(out_trade_no)
        if trade.state is not TradeState.PENDING:
            raise LedgerError("TRADE_NOT_PENDING", f"trade is {trade.state}")
        trade.state = TradeState.DECLINED
        return trade

    def close(self, out_trade_no: str) -> SandboxTrade:
        trade = self.get(out_trade_no)
        if trade.state is TradeState.PAID:
            raise LedgerError("TRADE_PAID", "a paid trade cannot be closed; refund it")
        trade.state, trade.closed_at = TradeState.CLOSED, trade.closed_at or time.time()
        return trade

    def refund(
        self, out_trade_no: str, out_refund_no: str, amount_minor: int
    ) -> tuple[SandboxTrade, SandboxRefund, bool]:
        """Returns (trade, refund, created); a repeated ``out_refund_no`` is a no-op."""
        trade = self.get(out_trade_no)
        for refund in trade.refunds:
            if refund.out_refund_no == out_refund_no:
                if refund.amount_minor != amount_minor:
                    raise LedgerError("REFUND_NO_USED", "out_refund_no reused with other amount")
                return trade, refund, False
        if trade.state is not TradeState.PAID:
            raise LedgerError("TRADE_NOT_PAID", "only paid trades can be refunded")
        if amount_minor <= 0 or trade.refunded_minor + amount_minor > trade.amount_minor:
            raise LedgerError("REFUND_AMT_EXCEEDED", "refund exceeds the refundable amount")
        refund = SandboxRefund(out_refund_no, self.next_ref(), amount_minor, time.time())
        trade.refunds.append(refund)
        return trade, refund, True

    def bill_rows(self, bill_date: str) -> list[dict[str, Any]]:
        """One row per payment and per refund whose time falls on ``bill_date`` (Beijing)."""
        rows: list[dict[str, Any]] = []
        for trade in self._trades.values():
            if trade.paid_at and _day(trade.paid_at) == bill_date:
                rows.append(
                    {
                        "time": _stamp(trade.paid_at),
                        "type": "PAYMENT",
                        "out_trade_no": trade.out_trade_no,
                        "provider_ref": trade.provider_ref,
                        "out_refund_no": "",
                        "amount_minor": trade.amount_minor,
                        "currency": trade.currency,
                        "subject": trade.subject,
                    }
                )
            for refund in trade.refunds:
                if _day(refund.created_at) == bill_date:
                    rows.append(
                        {
                            "time": _stamp(refund.created_at),
                            "type": "REFUND",
                            "out_trade_no": trade.out_trade_no,
                            "provider_ref": refund.refund_ref,
                            "out_refund_no": refund.out_refund_no,
                            "amount_minor": -refund.amount_minor,
                            "currency": trade.currency,
                            "subject": trade.subject,
                        }
                    )
        return sorted(rows, key=lambda row: row["time"])


def rows_to_csv(rows: list[dict[str, Any]], columns: list[tuple[str, Any]]) -> str:
    """Render bill rows; ``columns`` maps header text to a row key or a callable(row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([getter(row) if callable(getter) else row[getter] for _, getter in columns])
    return out.getvalue()


def _day(epoch: float) -> str:
    """Bills cover a Beijing calendar day, as the real providers' do."""
    return datetime.fromtimestamp(epoch, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
