"""What the commerce context needs from settings, as plain values (redcart/ builds it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from commerce.domain.pricing import CbecPolicy, FreightRates

CHINA = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CommerceConfig:
    secret_key: bytes
    reservation_ttl: timedelta = timedelta(minutes=15)
    freight: FreightRates = field(default_factory=FreightRates)
    cbec: CbecPolicy = field(default_factory=CbecPolicy)
    clock: Callable[[], datetime] = utc_now

    @property
    def identity_pepper(self) -> bytes:
        return b"identity:" + self.secret_key

    def quota_year(self, at: datetime) -> int:
        """The CBEC annual limit runs on the Chinese calendar year."""
        return at.astimezone(CHINA).year
