"""Live sessions over HTTP, on both stores: schedule, start, pin, unpin, end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from litestar.testing import TestClient

from tests.integration.conftest import Shop, sign_up

PROBLEM = "application/problem+json"


def _soon() -> str:
    return (datetime.now(UTC) + timedelta(minutes=5)).isoformat()


def test_a_merchant_runs_its_session(client: TestClient) -> None:
    shop = Shop(client, bonded=0, direct=0)
    r = client.post(
        "/live/sessions",
        headers=shop.headers,
        json={"title": " Spring sale ", "starts_at": _soon()},
    )
    assert r.status_code == 201, r.text
    session = r.json()
    sid = session["id"]
    assert session["state"] == "scheduled" and session["title"] == "Spring sale"
    assert session["host_merchant_id"] == shop.id

    upcoming = client.get("/live/sessions", params={"state": "upcoming"}).json()["items"]
    assert [s["id"] for s in upcoming] == [sid]
    assert client.get("/live/sessions", params={"state": "live"}).json()["items"] == []

    r = client.post(f"/live/sessions/{sid}/start", headers=shop.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "live"
    assert [s["id"] for s in client.get("/live/sessions").json()["items"]] == [sid]

    r = client.post(
        f"/live/sessions/{sid}/pins", headers=shop.headers, json={"product_id": shop.product}
    )
    assert r.status_code == 200, r.text
    assert r.json()["pinned"] == [shop.product]
    again = client.post(
        f"/live/sessions/{sid}/pins", headers=shop.headers, json={"product_id": shop.product}
    )
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM

    r = client.delete(f"/live/sessions/{sid}/pins/{shop.product}", headers=shop.headers)
    assert r.status_code == 200, r.text
    assert r.json()["pinned"] == []
    assert r.json()["pins"][0]["unpinned_at"] is not None

    r = client.post(f"/live/sessions/{sid}/end", headers=shop.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ended"

    seen = client.get(f"/live/sessions/{sid}").json()
    assert seen["state"] == "ended" and len(seen["pins"]) == 1
    assert client.get("/live/sessions").json()["items"] == []


def test_only_the_host_runs_a_session(client: TestClient) -> None:
    host = Shop(client, bonded=0, direct=0)
    other = Shop(client, name="Other", bonded=0, direct=0)
    sid = host.post("/live/sessions", {"title": "Mine", "starts_at": _soon()})["id"]
    for path in (f"/live/sessions/{sid}/start", f"/live/sessions/{sid}/end"):
        r = client.post(path, headers=other.headers)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == PROBLEM
    host.post(f"/live/sessions/{sid}/start", {})
    r = client.post(
        f"/live/sessions/{sid}/pins", headers=other.headers, json={"product_id": other.product}
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    # The host cannot pin another merchant's product either.
    r = client.post(
        f"/live/sessions/{sid}/pins", headers=host.headers, json={"product_id": other.product}
    )
    assert r.status_code == 404 and r.json()["field"] == "product_id"
    buyer = sign_up(client)
    r = client.post(f"/live/sessions/{sid}/end", headers=buyer)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM


def test_bad_input_is_a_problem(client: TestClient) -> None:
    shop = Shop(client, bonded=0, direct=0)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    cases = [
        ({"title": "x", "starts_at": "tomorrow"}, 400),
        ({"title": "x", "starts_at": "2030-01-01T10:00:00"}, 400),  # no time zone
        ({"title": "x", "starts_at": _soon(), "extra": 1}, 400),
        ({"title": "   ", "starts_at": _soon()}, 422),
        ({"title": "x", "starts_at": past}, 422),
        ({"title": "x", "starts_at": _soon(), "creator_id": "nope"}, 422),
        ({"title": "x", "starts_at": _soon(), "creator_id": str(uuid4())}, 404),
    ]
    for body, status in cases:
        r = client.post("/live/sessions", headers=shop.headers, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
    assert (
        client.post("/live/sessions", json={"title": "x", "starts_at": _soon()}).status_code == 401
    )

    sid = shop.post("/live/sessions", {"title": "Later", "starts_at": _soon()})["id"]
    r = client.post(
        f"/live/sessions/{sid}/pins", headers=shop.headers, json={"product_id": shop.product}
    )
    assert r.status_code == 409, r.text  # not live yet
    r = client.post(f"/live/sessions/{sid}/pins", headers=shop.headers, json={"product_id": "bad"})
    assert r.status_code == 422 and r.json()["field"] == "product_id"
    r = client.post(f"/live/sessions/{sid}/end", headers=shop.headers)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert client.get("/live/sessions/not-a-uuid").status_code == 404
    assert client.get(f"/live/sessions/{uuid4()}").status_code == 404
    r = client.get("/live/sessions", params={"state": "sideways"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
