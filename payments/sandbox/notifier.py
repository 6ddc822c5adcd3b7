"""Asynchronous notification delivery with the providers' real retry schedules, time-compressed.

Providers keep resending a notification until the merchant acknowledges it in the exact expected
form. The sandbox does the same so the merchant side meets retries, duplicates and re-signed
resends in tests; ``time_scale`` shrinks the schedule (0.001 turns Alipay's 4 minutes into
0.24 s). The switches inject the failure modes a merchant must survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

# Seconds between attempts after the first one.
# Alipay OpenAPI: 8 notifications within 25 h (4m,10m,10m,1h,2h,6h,15h).
ALIPAY_RETRY_INTERVALS: tuple[float, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)
# WeChat Pay APIv3: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h.
WECHATPAY_RETRY_INTERVALS: tuple[float, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip


@dataclass(slots=True)
class SandboxSwitches:
    """Failure injection; flip them through ``PUT /_sandbox/switches`` or directly in tests.

    * ``duplicate``: deliver every notification a second time even after it was acknowledged.
    * ``out_of_order``: hold each notification until the next one exists, then send the newer
      one first (e.g. a refund notification overtakes its payment notification).
    * ``late_by_seconds``: sign as if the notification had been sent that long ago, which is what
      a merchant sees when a notification sat in a queue (stale ``Wechatpay-Timestamp`` /
      ``notify_time``).
    * ``bad_signature``: corrupt the signature so verification must fail.
    """

    duplicate: bool = False
    out_of_order: bool = False
    late_by_seconds: int = 0
    bad_signature: bool = False

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in self.__slots__:  # type: ignore[attr-defined]
                raise ValueError(f"unknown switch {name!r}")
            setattr(self, name, type(getattr(self, name))(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    notice_id: str
    attempt: int
    status_code: int | None
    acknowledged: bool
    at: float


@dataclass(slots=True)
class Notice:
    notice_id: str
    notify_url: str
    payload: dict[str, Any]
    attempts: int = field(default=0)


# render(notice payload, switches) -> (headers, body bytes), called afresh for every attempt
# because providers re-sign resends with a new timestamp.
Renderer = Callable[[dict[str, Any], SandboxSwitches], tuple[dict[str, str], bytes]]
AckCheck = Callable[[httpx.Response], bool]


class NotificationDispatcher:
    def __init__(
        self,
        *,
        retry_intervals: Sequence[float],
        time_scale: float,
        render: Renderer,
        is_acknowledged: AckCheck,
        switches: SandboxSwitches | None = None,
    ) -> None:
        self.retry_intervals = tuple(retry_intervals)
        self.time_scale = time_scale
        self.switches = switches or SandboxSwitches()
        self.deliveries: list[DeliveryAttempt] = []
        self._render = render
        self._is_acknowledged = is_acknowledged
        self._held: Notice | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=5.0)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.aclose()

    def emit(self, notice_id: str, notify_url: str | None, payload: dict[str, Any]) -> None:
        """Queue a notification for delivery; silently skipped without a notify URL."""
        if not notify_url:
            return
        notice = Notice(notice_id, notify_url, payload)
        if self.switches.out_of_order:
            if self._held is None:
                self._held = notice
                return
            earlier, self._held = self._held, None
            self._spawn(self._deliver_in_order(notice, earlier))
            return
        self._spawn(self._deliver_with_retries(notice))

    def release_held(self) -> None:
        """Send a notification still held by ``out_of_order`` (used when switches reset)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._spawn(self._deliver_with_retries(held))

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no delivery is in flight; for tests and for graceful shutdown."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_in_order(self, first: Notice, second: Notice) -> None:
        await self._deliver_with_retries(first)
        await self._deliver_with_retries(second)

    async def _deliver_with_retries(self, notice: Notice) -> None:
        for delay in (0.0, *self.retry_intervals):
            if delay:
                await asyncio.sleep(delay * self.time_scale)
            if await self._attempt(notice):
                if self.switches.duplicate:
                    await self._attempt(notice)
                return
        logger.warning(
            "notification %s gave up after %d attempts",
            notice.notice_id,
            1 + len(self.retry_intervals),
        )

    async def _attempt(self, notice: Notice) -> bool:
        assert self._http is not None, "dispatcher not started"
        notice.attempts += 1
        headers, body = self._render(notice.payload, self.switches)
        status_code: int | None = None
        acknowledged = False
        try:
            response = await self._http.post(notice.notify_url, content=body, headers=headers)
            status_code = response.status_code
            acknowledged = self._is_acknowledged(response)
        except httpx.HTTPError as exc:
            logger.info(
                "notification %s attempt %d failed: %s",
                notice.notice_id,
                notice.attempts,
                type(exc).__name__,
            )
        self.deliveries.append(
            DeliveryAttempt(
                notice.notice_id, notice.attempts, status_code, acknowledged, time.time()
            )
        )
        return acknowledged
