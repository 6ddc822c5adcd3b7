"""Bad input to the social endpoints gets a 4xx problem+json naming the field, and writes
nothing: no event, no like/save row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import ADMIN, Shop, sign_up
from tests.social.conftest import Social, assert_problem, ledger_rows, until, written

MISSING = "6f1d3b0e-1c2a-4f5e-9a7b-0c1d2e3f4a5b"


@pytest.fixture
def nothing_written(social: Social) -> Any:
    """Call with a request; asserts its problem, and that no event or ledger row was written."""
    c = social.client

    def check(request: Callable[[], Any], status: int, field: str | None = None) -> dict:
        before = (written(c), ledger_rows(c))
        body = assert_problem(request(), status, field)
        assert (written(c), ledger_rows(c)) == before
        return body

    return check


def test_malformed_and_mistyped_bodies_are_400s(social: Social, nothing_written: Any) -> None:
    c, author = social.client, social.author
    raw = author | {"content-type": "application/json"}
    nothing_written(lambda: c.post("/notes", headers=raw, content=b'{"title": "x", '), 400)
    for patch, field in [
        ({"title": 5}, "title"),
        ({"product_ids": "not-a-list"}, "product_ids"),
        ({"image_refs": [1]}, "image_refs[0]"),
        ({"surprise": True}, None),
        ({"title": "x" * 1001}, "title"),
    ]:
        body = {"title": "t"} | patch
        problem = nothing_written(lambda b=body: c.post("/notes", headers=author, json=b), 400)
        if field:
            assert problem["field"] == field, problem
    note = social.note()["id"]
    nothing_written(
        lambda: c.post(f"/notes/{note}/comments", headers=author, json={"text": 3}), 400, "text"
    )
    link = {"code": "ok-code", "creator_id": social.creator, "valid_until": "tomorrow"}
    nothing_written(lambda: c.post("/referral-links", headers=social.shop.headers, json=link), 400)
    nothing_written(lambda: c.post("/touchpoints", headers=author, json={"kind": "note_view"}), 400)


def test_domain_limits_are_422s_naming_the_field(social: Social, nothing_written: Any) -> None:
    c, author, shop = social.client, social.author, social.shop
    tags = " ".join(f"#t{i}" for i in range(11))
    for body, field in [
        ({"title": "x" * 101}, "title"),
        ({"title": " "}, "title"),
        ({"title": "t", "body": "x" * 5001}, "body"),
        ({"title": "t", "body": tags}, "body"),
        ({"title": "t", "image_refs": ["a.jpg"] * 10}, "image_refs"),
        ({"title": "t", "image_refs": ["has space"]}, "image_refs[0]"),
        ({"title": "t", "product_ids": [shop.product] * 21}, "product_ids"),
        ({"title": "t", "product_ids": ["abc"]}, "product_ids[0]"),
        ({"title": "t", "product_ids": [MISSING]}, "product_ids[0]"),
    ]:
        nothing_written(lambda b=body: c.post("/notes", headers=author, json=b), 422, field)
    note = social.note()["id"]
    long = {"text": "x" * 501}
    nothing_written(lambda: c.post(f"/notes/{note}/comments", headers=author, json=long), 422)
    promo = {"code": "BIG", "creator_id": social.creator, "valid_until": until()}
    for terms, field in [
        ({"percent_off": 51}, "percent_off"),
        ({"percent_off": 0}, "percent_off"),
        ({"percent_off": 10, "code": "a b"}, "code"),
        ({"percent_off": 10, "commission_rate_bp": 5001}, "commission_rate_bp"),
        ({"percent_off": 10, "valid_until": until(-1)}, "valid_until"),
        ({"percent_off": 10, "valid_until": until(400)}, "valid_until"),
    ]:
        body = promo | terms
        nothing_written(
            lambda b=body: c.post("/promo-codes", headers=shop.headers, json=b), 422, field
        )
    kinds = [
        ({"kind": "promo_code", "source_id": note}, "kind"),
        ({"kind": "note_click", "source_id": note}, "product_id"),
        ({"kind": "note_view", "source_id": note, "product_id": shop.product}, "product_id"),
        ({"kind": "note_view", "source_id": "nope"}, "source_id"),
    ]
    for body, field in kinds:
        nothing_written(lambda b=body: c.post("/touchpoints", headers=author, json=b), 422, field)
    rid = {"user_id": social.kol_user, "commission_rate_bp": 1, "resident_id": "110105194912310021"}
    body = nothing_written(lambda: c.post("/creators", headers=shop.headers, json=rid), 422)
    assert body["field"] == "resident_id" and rid["resident_id"] not in str(body)


def test_unknown_ids_are_404s(social: Social, nothing_written: Any) -> None:
    c, author, shop = social.client, social.author, social.shop
    for path in ("/notes/not-a-uuid", f"/notes/{MISSING}", f"/notes/{MISSING}/comments"):
        nothing_written(lambda p=path: c.get(p), 404)
    clicks = [("post", "like"), ("delete", "like"), ("post", "save"), ("post", "shares")]
    for method, suffix in clicks:
        request = getattr(c, method)
        nothing_written(
            lambda r=request, s=suffix: r(f"/notes/{MISSING}/{s}", headers=author), 404, "note_id"
        )
    nothing_written(
        lambda: c.post(f"/notes/{MISSING}/comments", headers=author, json={"text": "hi"}), 404
    )
    view = {"kind": "note_view", "source_id": MISSING}
    nothing_written(lambda: c.post("/touchpoints", headers=author, json=view), 404, "source_id")
    join = {"kind": "live_join", "source_id": MISSING}
    nothing_written(lambda: c.post("/touchpoints", headers=author, json=join), 404, "source_id")
    user = {"user_id": MISSING, "commission_rate_bp": 100}
    nothing_written(lambda: c.post("/creators", headers=shop.headers, json=user), 404, "user_id")
    link = {"code": "fine", "creator_id": MISSING, "valid_until": until()}
    nothing_written(
        lambda: c.post("/referral-links", headers=shop.headers, json=link), 404, "creator_id"
    )
    with_product = link | {"creator_id": social.creator, "product_id": MISSING}
    nothing_written(lambda: c.post("/referral-links", headers=shop.headers, json=with_product), 404)
    nothing_written(lambda: c.get("/r/UNKNOWN"), 404, "code")
    nothing_written(lambda: c.get(f"/creators/{MISSING}", headers=ADMIN), 404)


def test_other_peoples_notes_and_creators_are_404s(social: Social, nothing_written: Any) -> None:
    c = social.client
    note = social.note()["id"]
    stranger = sign_up(c, "stranger")
    edit = {"title": "mine now"}
    nothing_written(lambda: c.put(f"/notes/{note}", headers=stranger, json=edit), 404, "note_id")
    nothing_written(lambda: c.delete(f"/notes/{note}", headers=stranger), 404, "note_id")
    rival = Shop(c, name="Rival", bonded=0, direct=0)
    creator = social.creator
    nothing_written(lambda: c.get(f"/creators/{creator}", headers=rival.headers), 404)
    nothing_written(lambda: c.delete(f"/creators/{creator}/link", headers=rival.headers), 404)
    code = {"code": "STEAL", "creator_id": creator, "percent_off": 5, "valid_until": until()}
    nothing_written(
        lambda: c.post("/promo-codes", headers=rival.headers, json=code), 404, "creator_id"
    )
    social.promo("MINE")
    nothing_written(lambda: c.post("/promo-codes/MINE/revoke", headers=rival.headers), 404)
    duplicate = {"code": "mine", "creator_id": creator, "percent_off": 5, "valid_until": until()}
    nothing_written(
        lambda: c.post("/promo-codes", headers=social.shop.headers, json=duplicate), 409, "code"
    )


def test_the_wrong_role_is_403_and_no_credentials_401(social: Social, nothing_written: Any) -> None:
    c, shop = social.client, social.shop
    note = social.note()["id"]
    nothing_written(lambda: c.post("/notes", headers=shop.headers, json={"title": "t"}), 403)
    nothing_written(lambda: c.post(f"/notes/{note}/like"), 401)
    body = {"user_id": social.kol_user, "commission_rate_bp": 1}
    nothing_written(lambda: c.post("/creators", headers=social.author, json=body), 403)
    nothing_written(lambda: c.get("/promo-codes/X", headers=ADMIN), 403)
    nothing_written(lambda: c.get("/r/some-code", headers={"Authorization": "Bearer nope"}), 401)
