"""Fixtures for the social tests: the integration API client (SQLite and PostgreSQL) and a
merchant with a creator, plus helpers that read the events the API wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from redcart.app import create_app
from redcart.wiring import migrate
from tests.conftest import make_settings
from tests.integration.conftest import Shop, sign_up

PROBLEM = "application/problem+json"


def until(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def runtime(client: TestClient) -> Any:
    return client.app.state.commerce


def events(client: TestClient, topic_prefix: str = "commerce.") -> list[Any]:
    """Every event written so far whose topic starts with `topic_prefix`, decoded."""
    app = runtime(client).app
    notes = app.recorder.select_notifications(0, 100_000)
    return [app.mapper.to_domain_event(n) for n in notes if n.topic.startswith(topic_prefix)]


def topics(client: TestClient, topic_prefix: str = "commerce.") -> list[str]:
    app = runtime(client).app
    notes = app.recorder.select_notifications(0, 100_000)
    return [n.topic for n in notes if n.topic.startswith(topic_prefix)]


def written(client: TestClient) -> int:
    return runtime(client).app.recorder.max_notification_id() or 0


def ledger_rows(client: TestClient) -> int:
    store = runtime(client).store
    return int(store.query("SELECT COUNT(*) FROM social_note_engagement")[0][0])


def assert_problem(r: Any, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


class Social:
    """A shop with a creator (a KOL buyer account) linked at 8 %, a buyer who posts notes."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        runtime(client).engagement.interval = 0.03  # keep sequential scenarios quick
        self.shop = Shop(client)
        self.author = sign_up(client, "author")
        r = client.post("/buyers", json={"display_name": "Kiko KOL"})
        self.kol_user = r.json()["id"]
        self.kol = {"Authorization": f"Bearer {r.json()['token']}"}
        r = client.post(
            "/creators",
            headers=self.shop.headers,
            json={"user_id": self.kol_user, "commission_rate_bp": 800},
        )
        assert r.status_code == 201, r.text
        self.creator = r.json()["id"]

    def note(self, headers: dict | None = None, **content: Any) -> dict:
        body = {"title": "Anessa #防晒 review", "body": "works", "product_ids": [self.shop.product]}
        r = self.client.post("/notes", headers=headers or self.author, json=body | content)
        assert r.status_code == 201, r.text
        return r.json()

    def promo(self, code: str = "KIKO10", percent_off: int = 10, **terms: Any) -> dict:
        body = {"code": code, "creator_id": self.creator, "percent_off": percent_off}
        r = self.client.post(
            "/promo-codes", headers=self.shop.headers, json=body | {"valid_until": until()} | terms
        )
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture
def client(store_url: str | None, tmp_path: Path) -> Iterator[TestClient]:
    """The integration tests' client: a fresh store, SQLite or PostgreSQL (`store_url`)."""
    settings = make_settings(store_url, tmp_path / "var")
    migrate(settings)
    with TestClient(app=create_app(settings, env={"REDCART_PAYMENTS": "off"})) as test_client:
        yield test_client


@pytest.fixture
def social(client: TestClient) -> Social:
    return Social(client)
