"""The claim route's fast path answers exactly as the declared handler would.

A claim body padded past the fast path's size limit (JSON allows trailing whitespace) takes the
declared Litestar handler instead; each scenario is sent both ways and the answers compared.
"""

from __future__ import annotations

import json
import re
from typing import Any

from litestar.testing import TestClient

from livestream.api.claim_fastpath import MAX_FAST_BODY
from tests.integration.conftest import ADDRESS, VALID_ID, Shop, sign_up
from tests.live_api.conftest import Clock
from tests.live_api.test_deals_http import PROBLEM, live_session, open_deal, writer_busy

UUID_OR_TIME = re.compile(r"^([0-9a-f-]{36}|\d{4}-\d\d-\d\d[T ][\d:.]+(\+00:00|\+08:00|Z)?)$")


def _post(client: TestClient, url: str, headers: dict, body: Any, *, slow: bool):
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    if slow:
        raw += b" " * (MAX_FAST_BODY + 1)  # still the same JSON document
    return client.post(url, headers=headers | {"Content-Type": "application/json"}, content=raw)


def _both(client: TestClient, url: str, headers: dict, body: Any, key: str | None) -> list:
    answers = []
    for slow in (False, True):
        extra = {} if key is None else {"Idempotency-Key": f"{key}-{slow}"}
        r = _post(client, url, headers | extra, body, slow=slow)
        answers.append((r.status_code, r.headers["content-type"], r.json()))
    return answers


def _shape(value: Any) -> Any:
    """The document with its ids and timestamps masked (two buyers' orders differ in those)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "…" if isinstance(value, str) and UUID_OR_TIME.match(value) else value


def test_the_fast_path_answers_every_claim_as_the_declared_handler(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=2, per_buyer_limit=1)
    url = f"/live/deals/{deal['id']}/claims"
    good = {"identity": {"name": "王小红", "resident_id": VALID_ID}, "address": ADDRESS}
    buyers = [sign_up(client, f"fp{i}") for i in range(4)]

    (status, media, fast), (*slow, late) = _both(client, url, buyers[0], good, "early")
    assert (status, media) == tuple(slow) == (409, PROBLEM)
    assert fast.pop("detail").startswith("the deal opens in")  # seconds go by between the two
    assert late.pop("detail").startswith("the deal opens in") and fast == late

    clock.advance(11)
    refusals = {
        "bad identity": (good | {"identity": {"name": "王", "resident_id": "1"}}, 422),
        "bad quantity": (good | {"quantity": 0}, 422),
        "wrong type": (good | {"quantity": "two"}, 400),
        "unknown field": (good | {"coupon": "X"}, 400),
        "not json": (b"{", 400),
    }
    for name, (body, status) in refusals.items():
        fast, slow = _both(client, url, buyers[0], body, name)
        assert fast[0] == status, (name, fast)
        assert fast == slow, name
    for name, headers, key in (
        ("no key", buyers[0], None),
        ("no credentials", {}, "anon"),
        ("a merchant", shop.headers, "shop"),
    ):
        fast, slow = _both(client, url, headers, good, key)
        assert fast[0] in (401, 403, 422) and fast[1] == PROBLEM, (name, fast)
        assert fast == slow, name
    missing = _both(client, url.replace(deal["id"], "not-a-uuid"), buyers[0], good, "404")
    assert missing[0][0] == 404 and missing[0] == missing[1]

    with writer_busy(client):
        shed = [_post(client, url, buyers[1] | {"Idempotency-Key": f"shed-{s}"}, good, slow=s)
                for s in (False, True)]  # fmt: skip
    assert [r.status_code for r in shed] == [503, 503]
    assert shed[0].json() == shed[1].json() and shed[0].json()["type"].endswith("/unavailable")
    assert shed[0].headers["retry-after"] == shed[1].headers["retry-after"] == "1"
    assert shed[0].headers["content-type"] == shed[1].headers["content-type"] == PROBLEM

    fast = _post(client, url, buyers[1] | {"Idempotency-Key": "win"}, good, slow=False)
    slow = _post(client, url, buyers[2] | {"Idempotency-Key": "win"}, good, slow=True)
    assert fast.status_code == slow.status_code == 201
    first, second = fast.json(), slow.json()
    assert (first["deal"].pop("units_left"), second["deal"].pop("units_left")) == (1, 0)
    assert _shape(first) == _shape(second)
    assert fast.json()["quantity"] == slow.json()["quantity"] == 1

    sold_out = _both(client, url, buyers[3], good, "late")
    assert sold_out[0] == sold_out[1] and sold_out[0][0] == 409
    at_limit = _both(client, url, buyers[1], good, "again")
    assert at_limit[0] == at_limit[1] and "per buyer" in at_limit[0][2]["detail"]
    client.blocking_portal.call(client.app.state.live.deal_room.sweep)  # nothing lapsed
    with writer_busy(client):  # what needs no writer is never shed
        assert _both(client, url, buyers[3], good, "late-shed") == sold_out
        assert _both(client, url, buyers[1], good, "again-shed") == at_limit

    replay = _post(client, url, buyers[1] | {"Idempotency-Key": "win"}, good, slow=False)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    same = ("id", "deal_id", "quantity", "pay_by", "held_until", "order_id")
    assert {k: replay.json()[k] for k in same} == {k: first[k] for k in same}  # as first given
    assert replay.json()["state"] in ("placing", "placed")  # and where it stands now
    assert replay.json()["deal"]["units_left"] == 0  # the deal as it is now
    reused = _post(client, url, buyers[1] | {"Idempotency-Key": "win"}, good, slow=True)
    assert reused.status_code == 422  # same key, another body (the padding counts)
