"""A claim body's checks are remembered by the body and the day, and only when they passed.

In a sale a buyer sends the same body many times; remembering must never let a different body,
or a body refused earlier, through unchecked (livestream.api.claims.checked_once).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from commerce.api import schemas
from commerce.config import CHINA, CommerceConfig
from commerce.domain.errors import InvalidInput
from commerce.domain.identity import resident_id_check_char
from livestream.api.claims import ClaimDeal, checked_once

ADDRESS = {
    "recipient": "王小红",
    "mobile": "13800138000",
    "province": "上海市",
    "city": "上海市",
    "district": "浦东新区",
    "street": "世纪大道 100 号",
    "postcode": "200120",
}


def _resident_id(born: str) -> str:
    body = f"110105{born}002"
    return body + resident_id_check_char(body)


def _claim(resident_id: str) -> ClaimDeal:
    return ClaimDeal(
        identity=schemas.Identity(name="王小红", resident_id=resident_id),
        address=schemas.Address(**ADDRESS),
    )


class _Live(SimpleNamespace):
    def __init__(self, now: datetime) -> None:
        self.now = now
        cfg = CommerceConfig(secret_key=b"k", clock=lambda: self.now)
        super().__init__(checked_claims={}, commerce=SimpleNamespace(cfg=cfg), now=now)


def test_a_body_refused_for_a_birth_date_to_come_passes_on_that_day() -> None:
    live = _Live(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    tomorrow = (live.now.astimezone(CHINA) + timedelta(days=1)).strftime("%Y%m%d")
    claim = _claim(_resident_id(tomorrow))
    for _ in range(2):  # a refusal is not remembered: checked again, refused again
        with pytest.raises(InvalidInput, match="future"):
            checked_once(claim, live)
    live.now += timedelta(days=1)
    identity, _ = checked_once(claim, live)
    assert identity.resident_id_masked.endswith(_resident_id(tomorrow)[-4:])


def test_another_body_from_the_same_buyer_is_checked_afresh() -> None:
    live = _Live(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    good = _claim(_resident_id("19491231"))
    first, address = checked_once(good, live)
    assert checked_once(good, live)[0] == first
    bad = _claim(_resident_id("19491231")[:-1] + "1")  # its check character is X
    with pytest.raises(InvalidInput, match="check digit"):
        checked_once(bad, live)
    address["street"] = "changed by one caller"
    assert checked_once(good, live)[1]["street"] == ADDRESS["street"]
