"""Daily bills: our adapters fetch and read both sandboxes' bills, and ``compare_bills`` holds them
against Payment streams in an in-memory event store.

The sandboxes bill by Beijing calendar day, as the providers do, so these tests ask for today's
date in Beijing and compare with the default zone. Other tests share the
session sandboxes, so bills are filtered to this test's trade numbers before asserting.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest

from payments.adapters import alipay, wechatpay
from payments.port import (
    BadSignature,
    BillingGateway,
    BillLine,
    NotificationKind,
    PaymentGateway,
    RefundPayment,
    UnsupportedOperation,
    out_refund_no_for,
)
from payments.reconcile import Finding, compare_bills
from payments.records import Payment, Payments, payment_id
from payments.runtime import PaymentsRuntime
from tests.payments import test_alipay_adapter as alipay_tests
from tests.payments import test_wechatpay_adapter as wechat_tests

pytestmark = pytest.mark.timeout(30)

PAYMENT, REFUND = NotificationKind.PAYMENT, NotificationKind.REFUND


@dataclass
class Trades:
    provider: str
    gateway: BillingGateway
    paid: str  # out_trade_no of an 88.00 payment
    refunded: str  # out_trade_no of a 50.00 payment with a 12.00 refund
    refund_no: str
    day: date
    unreachable: BillingGateway  # same keys, nothing listening


@pytest.fixture(params=["alipay", "wechatpay"])
async def trades(
    request: pytest.FixtureRequest, notify_receiver, channel: str
) -> AsyncIterator[Trades]:
    """One paid and one partially refunded payment at the provider's sandbox, today (Beijing)."""
    tests = alipay_tests if request.param == "alipay" else wechat_tests
    base_url, keys = request.getfixturevalue(
        "alipay_sandbox" if request.param == "alipay" else "wechat_sandbox"
    )
    receiver, receiver_url = notify_receiver
    gateway = tests.make_gateway(base_url, keys)
    paid, _ = await tests.paid_payment(gateway, base_url, receiver, receiver_url, channel)
    second = f"{channel}-r"
    refunded, _ = await tests.paid_payment(gateway, base_url, receiver, receiver_url, second, 5000)
    refund_no = out_refund_no_for(refunded.out_trade_no, 1)
    await gateway.refund(RefundPayment(refunded.out_trade_no, refund_no, 1200, 5000, "CNY"))
    unreachable = tests.make_gateway("http://127.0.0.1:9", keys)
    yield Trades(
        request.param,
        gateway,
        paid.out_trade_no,
        refunded.out_trade_no,
        refund_no,
        datetime.now(ZoneInfo("Asia/Shanghai")).date(),
        unreachable,
    )
    await gateway.aclose()
    await unreachable.aclose()


async def test_bill_lists_payments_and_refunds_in_fen(trades: Trades) -> None:
    assert isinstance(trades.gateway, BillingGateway)
    assert isinstance(trades.gateway, PaymentGateway)
    bill = await trades.gateway.fetch_daily_bill(trades.day)
    ours = sorted(
        (line for line in bill if line.out_trade_no in (trades.paid, trades.refunded)),
        key=lambda line: (line.out_trade_no != trades.paid, line.kind),
    )
    assert [
        (x.out_trade_no, x.kind, x.amount_minor, x.currency, x.out_refund_no) for x in ours
    ] == [
        (trades.paid, PAYMENT, 8800, "CNY", None),
        (trades.refunded, PAYMENT, 5000, "CNY", None),
        (trades.refunded, REFUND, 1200, "CNY", trades.refund_no),
    ]
    assert all(line.provider_ref for line in ours)
    assert await trades.gateway.fetch_daily_bill(date(2001, 1, 1)) == []


class NoBills:
    """Stands in for Stripe: no ``fetch_daily_bill`` at all."""

    provider = "stripe"


class RefusesBills:
    provider = "other"

    async def fetch_daily_bill(self, bill_date: date) -> list[BillLine]:
        raise UnsupportedOperation("no bills here")


async def never_called(*args: object, **kwargs: object) -> dict:
    raise AssertionError("compare_bills must not touch orders")


def ledger(trades: Trades, **overrides: int) -> tuple[PaymentsRuntime, dict[str, Payment]]:
    """Payment streams mirroring the sandbox trades; overrides change amounts by trade number."""
    app = Payments(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    runtime = PaymentsRuntime(
        app=app,
        gateways={trades.provider: trades.gateway, "stripe": NoBills(), "other": RefusesBills()},  # type: ignore[dict-item]
        public_url="http://127.0.0.1:9",
        order_for_payment=never_called,
        record_payment=never_called,
    )
    payments = {}
    for out_trade_no, total in ((trades.paid, 8800), (trades.refunded, 5000)):
        payments[out_trade_no] = record(app, trades.provider, out_trade_no, total, overrides)
    refunded = payments[trades.refunded]
    refunded.refund(trades.refund_no, overrides.get("refund", 1200), "customer asked")
    app.save(refunded)
    return runtime, payments


def record(app: Payments, provider: str, out_trade_no: str, total: int, overrides: dict) -> Payment:
    method = "alipay" if provider == "alipay" else "wechat_pay"
    payment = Payment(
        id=payment_id(out_trade_no),
        order_id=uuid4(),
        provider=provider,
        method=method,
        amount_fen=overrides.get(out_trade_no, total),
        currency="CNY",
        out_trade_no=out_trade_no,
        next_action={},
    )
    payment.succeed("test", "paid")
    app.save(payment)
    return payment


async def findings_for(trades: Trades, runtime, payments, *extra: str) -> list[Finding]:
    found = await compare_bills(runtime, list(payments), trades.day)
    assert all(f.provider == trades.provider for f in found)  # stripe / other were skipped
    relevant = {trades.paid, trades.refunded, *extra}
    return sorted((f for f in found if f.out_trade_no in relevant), key=lambda f: f.action)


async def test_consistent_ledger_reconciles(trades: Trades) -> None:
    runtime, payments = ledger(trades)
    assert await findings_for(trades, runtime, payments.values()) == []


async def test_billed_payment_missing_from_the_ledger(trades: Trades) -> None:
    runtime, payments = ledger(trades)
    found = await findings_for(trades, runtime, [payments[trades.paid]])
    refund = f"refund {trades.refund_no} in the bill, not in the ledger"
    assert [(f.out_trade_no, f.ours, f.action) for f in found] == [
        (trades.refunded, "missing", "mismatch: in the bill, not in the ledger"),
        (trades.refunded, "missing", f"mismatch: {refund}"),
    ]


async def test_amount_differences_are_mismatches(trades: Trades) -> None:
    runtime, payments = ledger(trades, **{trades.paid: 8000, "refund": 1000})
    found = await findings_for(trades, runtime, payments.values())
    assert [(f.out_trade_no, f.action) for f in found] == [
        (trades.paid, "mismatch: bill 8800 CNY, ours 8000 CNY"),
        (trades.refunded, f"mismatch: refund {trades.refund_no}: bill 1200 CNY, ours 1000 CNY"),
    ]


async def test_ledger_payment_absent_from_the_bill(trades: Trades) -> None:
    runtime, payments = ledger(trades)
    ghost = record(runtime.app, trades.provider, f"rcghost{uuid4().hex[:20]}", 100, {})
    pending = Payment(
        id=payment_id("rcpending"),
        order_id=uuid4(),
        provider=trades.provider,
        method=ghost.method,
        amount_fen=100,
        currency="CNY",
        out_trade_no="rcpending",
        next_action={},
    )
    runtime.app.save(pending)  # never paid: not expected in any bill
    payments[trades.paid].refund("rfnotbilled", 100, "refunded only in our books")
    runtime.app.save(payments[trades.paid])
    found = await findings_for(
        trades, runtime, [*payments.values(), ghost, pending], ghost.out_trade_no, "rcpending"
    )
    refund = "refund rfnotbilled in the ledger, not in the bill"
    assert [(f.out_trade_no, f.ours, f.theirs, f.action) for f in found] == [
        (ghost.out_trade_no, "succeeded", "not billed", "mismatch: in the ledger, not in the bill"),
        (trades.paid, "succeeded", "not billed", f"mismatch: {refund}"),
    ]


async def test_unreachable_bill_is_reported(trades: Trades) -> None:
    runtime, payments = ledger(trades)
    runtime.gateways[trades.provider] = trades.unreachable
    found = await compare_bills(runtime, list(payments.values()), trades.day)
    assert [(f.out_trade_no, f.action.split(":")[0]) for f in found] == [("*", "unreachable")]


class TamperingTransport(httpx.AsyncHTTPTransport):
    """A man in the middle who adds a line to the (unsigned) bill file."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path != "/v3/billdownload/file":
            return response
        content = await response.aread() + b"`2026-01-01,`1,`2,`rcforged,`SUCCESS,`,`1.00,`CNY,`x\n"
        return httpx.Response(response.status_code, headers=response.headers, content=content)


async def test_wechat_bill_must_match_the_signed_hash(wechat_sandbox) -> None:
    base_url, keys = wechat_sandbox
    http = httpx.AsyncClient(transport=TamperingTransport())
    gateway = wechat_tests.make_gateway(base_url, keys, http=http)
    with pytest.raises(BadSignature, match="hash_value"):
        await gateway.fetch_daily_bill(datetime.now(ZoneInfo("Asia/Shanghai")).date())
    await gateway.aclose()


def test_real_alipay_layout_zipped_gbk() -> None:
    """The real gateway zips a 业务明细 and a 汇总 file, GBK, with ``#`` comment lines."""
    header = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,订单金额（元）,"
    header += "退款批次号/请求号"
    details = "\n".join(
        [
            "#支付宝业务明细查询",
            "#账号：[20880000000000000156]",
            header,
            "2026010122001,rc1,交易,Live drop,2026-01-01 10:00:00,2026-01-01 10:00:05,88.00,",
            "2026010122001,rc1,退款,Live drop,2026-01-01 10:00:00,2026-01-01 11:00:00,-12.50,rf1",
            "2026010122002,rc2,其它,Live drop,2026-01-01 10:00:00,2026-01-01 11:00:00,1.00,",
            "#-----------------------------------------业务明细列表结束------------------------",
            "#导出时间：[2026年01月02日 09:00:00]",
        ]
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("2088_20260101_业务明细(汇总).csv".encode("gbk").decode("cp437"), "#汇总")
        zipped.writestr(
            "2088_20260101_业务明细.csv".encode("gbk").decode("cp437"), details.encode("gbk")
        )
    assert alipay.parse_trade_bill(archive.getvalue()) == [
        BillLine("rc1", PAYMENT, 8800, "CNY", None, "2026010122001"),
        BillLine("rc1", REFUND, 1250, "CNY", "rf1", "2026010122001"),
    ]


def test_real_wechat_layout_with_summary() -> None:
    """The full ALL-type layout: 应结订单金额 / 退款金额 columns, then a summary block."""
    text = "\n".join(
        [
            "交易时间,商户号,微信订单号,商户订单号,交易状态,货币种类,应结订单金额,微信退款单号,"
            "商户退款单号,退款金额",
            "`2026-01-01 10:00:05,`190,`4200001,`rc1,`SUCCESS,`CNY,`88.00,`0,`0,`0.00",
            "`2026-01-01 11:00:00,`190,`4200001,`rc1,`REFUND,`CNY,`88.00,`5030001,`rf1,`12.50",
            "`2026-01-01 12:00:00,`190,`4200002,`rc2,`REVOKED,`CNY,`0.00,`0,`0,`0.00",
            "总交易单数,应结订单总金额,退款总金额",
            "`3,`88.00,`12.50",
        ]
    )
    assert wechatpay.parse_trade_bill(text) == [
        BillLine("rc1", PAYMENT, 8800, "CNY", None, "4200001"),
        BillLine("rc1", REFUND, 1250, "CNY", "rf1", "5030001"),
    ]
