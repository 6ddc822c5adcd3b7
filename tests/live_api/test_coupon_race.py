"""Thirty buyers race for a five-use live coupon against real servers: exactly five orders get
it, on SQLite and on PostgreSQL with two server processes whose writers only agree through the
store's (id, version) key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from commerce.domain import ids
from redcart.wiring import commerce_app, migrate
from tests.conftest import make_settings
from tests.integration.test_concurrency import race, seed
from tests.servers import ApiServer, settings_env

BUYERS, USES = 30, 5


def coupon_session(url: str, merchant_key: str) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {merchant_key}"}
    with httpx.Client(base_url=url, timeout=30) as c:
        starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        sid = c.post("/live/sessions", headers=headers,
                     json={"title": "race", "starts_at": starts}).json()["id"]  # fmt: skip
        assert c.post(f"/live/sessions/{sid}/start", headers=headers).status_code == 200
        r = c.post(f"/live/sessions/{sid}/coupons", headers=headers,
                   json={"amount_fen": 100, "quantity": USES, "per_buyer_limit": 1})  # fmt: skip
        assert r.status_code == 201, r.text
    return sid, r.json()["id"]


@pytest.mark.parametrize(
    ("store", "processes"),
    [("sqlite", 1), pytest.param("postgres", 2, marks=pytest.mark.postgres)],
)
def test_thirty_buyers_for_a_five_use_coupon(
    request: pytest.FixtureRequest, tmp_path: Path, store: str, processes: int
) -> None:
    database_url = request.getfixturevalue("postgres_url") if store == "postgres" else None
    settings = make_settings(database_url, tmp_path / "var")
    migrate(settings)
    env = settings_env(database_url, tmp_path / "var") | {"REDCART_PAYMENTS": "off"}
    servers = [ApiServer(env, tmp_path / f"s{i}.log") for i in range(processes)]
    try:
        for server in servers:
            server.wait_ready()
        merchant_id, _, tokens, key = seed(servers[0].url, buyers=BUYERS)
        sid, coupon_id = coupon_session(servers[0].url, key)
        ref = {"session_id": sid, "coupon_id": coupon_id}
        answers = race([s.url for s in servers], merchant_id, tokens, coupon=ref)
    finally:
        for server in servers:
            server.stop()
    assert [r.status_code for r in answers].count(201) == USES
    assert all(r.json()["reason"] == "used_up" for r in answers if r.status_code == 409)
    app = commerce_app(settings, create_table=False)
    try:  # replay the coupon's stream: no version ever held more uses than it has
        stream = ids.coupon_uses_id(UUID(coupon_id))
        final = app.repository.get(stream)
        for version in range(1, final.version + 1):
            assert len(app.repository.get(stream, version=version).uses) <= USES
        assert len(final.uses) == USES
    finally:
        app.close()
