"""Notes, creators, referral links, promo codes and touchpoints as buyers, merchants and admins use
them, on SQLite and on PostgreSQL; and the events they leave, checked against
docs/events-social.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
from litestar.testing import TestClient

from commerce.api import responses as out
from tests.integration.conftest import ADMIN, VALID_ID, Shop, order_body, sign_up
from tests.social.conftest import Social, assert_problem, events, topics, until, written

TIMESTAMPED = {"originator_id", "originator_version", "timestamp", "originator_topic"}
OFFER = {"code", "creator_id", "merchant_id", "commission_rate_bp", "valid_from", "valid_until"}
OFFER |= {"at"}


def fields(event: object) -> set[str]:
    return set(vars(event)) - TIMESTAMPED


def test_a_buyer_posts_edits_and_deletes_a_note_and_no_one_else_may(social: Social) -> None:
    c, other = social.client, sign_up(social.client, "other")
    note = social.note(title="Anessa #防晒", body="spf50 #Sunscreen", image_refs=["n/1.jpg"])
    assert note["hashtags"] == ["防晒", "sunscreen"]
    assert note["product_ids"] == [social.shop.product]
    public = c.get(f"/notes/{note['id']}")  # no credentials: notes are public
    assert public.status_code == 200 and public.json()["counts"]["likes"] == 0
    edit = {"title": "Anessa, a month on", "body": "still good"}
    assert_problem(c.put(f"/notes/{note['id']}", headers=other, json=edit), 404, "note_id")
    assert_problem(c.delete(f"/notes/{note['id']}", headers=other), 404, "note_id")
    r = c.put(f"/notes/{note['id']}", headers=social.author, json=edit)
    assert r.status_code == 200 and r.json()["title"] == "Anessa, a month on"
    assert r.json()["product_ids"] == [] and r.json()["edited_at"]
    assert c.delete(f"/notes/{note['id']}", headers=social.author).status_code == 204
    assert_problem(c.get(f"/notes/{note['id']}"), 404)
    assert_problem(c.post(f"/notes/{note['id']}/like", headers=other), 404)
    posted, edited, deleted = events(c, "commerce.Note.")
    contract = {"author_id", "title", "body", "image_refs", "product_ids", "hashtags", "at"}
    assert fields(posted) == fields(edited) == contract
    assert fields(deleted) == {"at"}
    assert posted.product_ids == [UUID(social.shop.product)] and edited.title == edit["title"]


def test_clicks_count_once_per_user_and_land_as_engagement_events(social: Social) -> None:
    c, note = social.client, social.note()
    url = f"/notes/{note['id']}"
    ann, ben = sign_up(c, "ann"), sign_up(c, "ben")
    assert c.post(f"{url}/like", headers=ann).json()["liked"] is True
    assert c.post(f"{url}/like", headers=ann).json()["counts"]["likes"] == 1  # again: no change
    assert c.post(f"{url}/like", headers=ben).json()["counts"]["likes"] == 2
    r = c.delete(f"{url}/like", headers=ben)
    assert r.json() == {"note_id": note["id"], "liked": False, "counts": r.json()["counts"]}
    assert r.json()["counts"]["likes"] == 1
    assert c.post(f"{url}/save", headers=ben).json()["saved"] is True
    assert c.delete(f"{url}/save", headers=ann).json()["saved"] is False  # never saved: a no-op
    for _ in range(2):
        assert c.post(f"{url}/shares", headers=ann).status_code == 200
    r = c.post(f"{url}/comments", headers=ben, json={"text": " 好用吗？ "})
    assert r.status_code == 201 and r.json()["text"] == "好用吗？"
    assert c.get(f"{url}/engagement/me", headers=ben).json() == {"liked": False, "saved": True}
    counts = c.get(url).json()["counts"]
    assert counts == {"views": 0, "likes": 1, "saves": 1, "shares": 2, "comments": 1}
    counted = [e for e in events(c, "commerce.Note.") if hasattr(e, "flush_id")]
    assert fields(counted[0]) == {"views", "likes", "saves", "shares", "comments", "at", "flush_id"}
    for name in counts:
        assert sum(getattr(e, name) for e in counted) == counts[name]
    assert len(counted) < 9  # nine clicks; a click that changes nothing writes nothing
    page = c.get(f"{url}/comments", params={"limit": 1}).json()
    assert [i["text"] for i in page["items"]] == ["好用吗？"] and page["next_cursor"] is None


def test_a_comment_retried_with_its_idempotency_key_is_stored_once(social: Social) -> None:
    c, note = social.client, social.note()
    url, key = f"/notes/{note['id']}/comments", {"Idempotency-Key": "c-1"}
    first = c.post(url, headers=social.author | key, json={"text": "first!"})
    again = c.post(url, headers=social.author | key, json={"text": "first!"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = c.post(url, headers=social.author | key, json={"text": "changed"})
    assert_problem(other, 422, "Idempotency-Key")
    assert topics(c).count("commerce.Note.Commented") == 1
    assert c.get(f"/notes/{note['id']}").json()["counts"]["comments"] == 1


def test_creators_are_their_merchants_own(social: Social) -> None:
    c, shop = social.client, social.shop
    rival = Shop(c, name="Rival", bonded=0, direct=0)
    relink = {"user_id": social.kol_user, "commission_rate_bp": 900}
    r = c.post("/creators", headers=shop.headers, json=relink)
    assert r.status_code == 200  # already a creator: re-linked at the new rate
    assert r.json()["merchants"] == [{"merchant_id": shop.id, "commission_rate_bp": 900}]
    assert_problem(c.get(f"/creators/{social.creator}", headers=rival.headers), 404)
    link = {"code": "rival-1", "creator_id": social.creator, "valid_until": until()}
    assert_problem(c.post("/referral-links", headers=rival.headers, json=link), 404, "creator_id")
    assert_problem(c.delete(f"/creators/{social.creator}/link", headers=rival.headers), 404)
    social.promo("KIKO5", 5)
    assert_problem(c.get("/promo-codes/KIKO5", headers=rival.headers), 404, "code")
    assert_problem(c.post("/promo-codes/kiko5/revoke", headers=rival.headers), 404, "code")
    both = c.post("/creators", headers=rival.headers, json=relink | {"commission_rate_bp": 300})
    assert both.json()["merchants"] == [{"merchant_id": rival.id, "commission_rate_bp": 300}]
    admin_view = c.get(f"/creators/{social.creator}", headers=ADMIN).json()
    assert len(admin_view["merchants"]) == 2
    registered, *links = events(c, "commerce.Creator.")
    assert fields(registered) == {"user_id", "display_name", "identity_hashes", "at"}
    assert {fields(e) == {"merchant_id", "commission_rate_bp", "at"} for e in links} == {True}


def test_a_creators_identity_hash_is_the_one_their_orders_carry(client: TestClient) -> None:
    shop = Shop(client)
    kol = client.post("/buyers", json={"display_name": "kol"}).json()
    body = {"user_id": kol["id"], "commission_rate_bp": 500, "resident_id": VALID_ID}
    r = client.post("/creators", headers=shop.headers, json=body)
    assert r.status_code == 201 and r.json()["identity_registered"] is True
    assert VALID_ID not in r.text
    order = client.post(
        "/orders", headers={"Authorization": f"Bearer {kol['token']}"}, json=order_body(shop)
    )
    [registered] = events(client, "commerce.Creator.Registered")
    [placed] = events(client, "commerce.Order.Placed")
    assert order.status_code == 201
    assert registered.identity_hashes == [placed.identity["identity_hash"]]


def test_following_a_referral_link_records_the_click_for_a_signed_in_buyer(social: Social) -> None:
    c, shop = social.client, social.shop
    link = {"code": "kiko-sun", "creator_id": social.creator, "product_id": shop.product}
    r = c.post("/referral-links", headers=shop.headers, json=link | {"valid_until": until()})
    assert r.status_code == 201 and r.json()["commission_rate_bp"] == 800  # the creator's rate
    assert r.json()["url"] == "/r/kiko-sun"
    anonymous = c.get("/r/kiko-sun").json()
    assert anonymous["product_id"] == shop.product and anonymous["touchpoint_id"] is None
    buyer = sign_up(c, "fan")
    followed = c.get("/r/kiko-sun", headers=buyer).json()
    [journey] = events(c, "commerce.Journey.TouchpointsRecorded")
    [tp] = journey.touchpoints
    assert tp["id"] == followed["touchpoint_id"] and tp["kind"] == "referral_click"
    assert (tp["creator_id"], tp["source_id"], tp["product_id"]) == (
        social.creator,
        "kiko-sun",
        shop.product,
    )
    assert c.post("/referral-links/kiko-sun/revoke", headers=shop.headers).json()["usable"] is False
    assert_problem(c.get("/r/kiko-sun"), 404, "code")
    assert_problem(c.get("/r/no-such-link"), 404)
    [created] = events(c, "commerce.ReferralLink.Created")
    assert fields(created) == OFFER | {"product_id"}


def test_a_promo_code_discounts_the_goods_before_tax_and_attributes_the_order(
    social: Social,
) -> None:
    c, shop = social.client, social.shop
    promo = social.promo("kiko10", 10)
    assert promo["code"] == "KIKO10"
    buyer = sign_up(c, "fan")
    plain = c.post("/orders", headers=buyer, json=order_body(shop, quantity=2)).json()
    r = c.post("/orders", headers=buyer, json=order_body(shop, quantity=2, promo_code="Kiko10"))
    assert r.status_code == 201, r.text
    order = r.json()
    discount = plain["quote"]["goods_fen"] - order["quote"]["goods_fen"]
    assert discount == plain["quote"]["goods_fen"] // 10 > 0
    assert order["attribution"] == {
        "promo_code": "KIKO10",
        "creator_id": social.creator,
        "percent_off": 10,
        "discount_fen": discount,
    }
    dutiable = order["quote"]["goods_fen"] + order["quote"]["freight_fen"]
    assert abs(order["quote"]["tax_fen"] - dutiable * 0.091) <= 0.5 * len(order["lines"]) + 0.5
    placed = events(c, "commerce.Order.Placed")[-1]
    assert placed.attribution == order["attribution"]
    [journey] = events(c, "commerce.Journey.TouchpointsRecorded")
    assert [(t["kind"], t["source_id"], t["creator_id"]) for t in journey.touchpoints] == [
        ("promo_code", "KIKO10", social.creator)
    ]
    assert fields(events(c, "commerce.PromoCode.Created")[0]) == OFFER | {"percent_off"}


def test_unusable_promo_codes_are_refused_naming_the_field(social: Social) -> None:
    c, shop = social.client, social.shop
    rival = Shop(c, name="Rival", bonded=0, direct=0)
    kol = c.post("/buyers", json={"display_name": "rival kol"}).json()["id"]
    linked = {"user_id": kol, "commission_rate_bp": 1}
    cid = c.post("/creators", headers=rival.headers, json=linked).json()["id"]
    rival_code = {"code": "RIVAL", "creator_id": cid, "percent_off": 20, "valid_until": until()}
    assert c.post("/promo-codes", headers=rival.headers, json=rival_code).status_code == 201
    social.promo("LATER", valid_from=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    social.promo("GONE")
    c.post("/promo-codes/GONE/revoke", headers=shop.headers)
    buyer = sign_up(c, "fan")
    before = written(c)
    for code in ("NOPE", "RIVAL", "LATER", "gone", "bad code!"):
        r = c.post("/orders", headers=buyer, json=order_body(shop, promo_code=code))
        assert_problem(r, 422, "promo_code")
    assert written(c) == before
    assert c.delete(f"/creators/{social.creator}/link", headers=shop.headers).status_code == 204
    # The creator left the merchant: their codes stop working.
    r = c.post("/orders", headers=buyer, json=order_body(shop, promo_code="KIKO10"))
    assert_problem(r, 422, "promo_code")


def test_buyers_report_touchpoints_that_credit_the_creator_behind_them(social: Social) -> None:
    c, shop = social.client, social.shop
    kol_note = social.note(headers=social.kol)  # the creator posts: views credit them
    buyer = sign_up(c, "fan")
    view = {"kind": "note_view", "source_id": kol_note["id"]}
    view = c.post("/touchpoints", headers=buyer, json=view)
    assert view.status_code == 201 and view.json()["creator_id"] == social.creator
    click = {"kind": "note_click", "source_id": kol_note["id"], "product_id": shop.product}
    assert c.post("/touchpoints", headers=buyer, json=click).json()["product_id"] == shop.product
    assert c.get(f"/notes/{kol_note['id']}").json()["counts"]["views"] == 1
    starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    session = {"title": "Live", "starts_at": starts}
    sid = c.post("/live/sessions", headers=shop.headers, json=session).json()["id"]
    assert c.post(f"/live/sessions/{sid}/start", headers=shop.headers).status_code == 200
    pin = c.post(
        f"/live/sessions/{sid}/pins", headers=shop.headers, json={"product_id": shop.product}
    )
    assert pin.status_code == 200, pin.text
    join = c.post("/touchpoints", headers=buyer, json={"kind": "live_join", "source_id": sid})
    assert join.status_code == 201 and join.json()["creator_id"] == ""
    live_click = {"kind": "live_click", "source_id": sid, "product_id": shop.product}
    assert c.post("/touchpoints", headers=buyer, json=live_click).status_code == 201
    recorded = [t for e in events(c, "commerce.Journey.TouchpointsRecorded") for t in e.touchpoints]
    assert [t["kind"] for t in recorded] == ["note_view", "note_click", "live_join", "live_click"]
    assert {t["source_id"] for t in recorded[2:]} == {sid}
    for e in events(c, "commerce.Journey.TouchpointsRecorded"):
        assert fields(e) == {"buyer_id", "touchpoints"}


def test_every_answer_matches_its_documented_shape(social: Social) -> None:
    c, shop = social.client, social.shop
    note = social.note()
    url = f"/notes/{note['id']}"
    link = {"code": "shape", "creator_id": social.creator, "valid_until": until()}
    view = {"kind": "note_view", "source_id": note["id"]}
    checks = [
        (c.get(url), out.Note),
        (c.post(f"{url}/like", headers=social.author), out.Liked),
        (c.post(f"{url}/save", headers=social.author), out.Saved),
        (c.post(f"{url}/shares", headers=social.author), out.Engagement),
        (c.get(f"{url}/engagement/me", headers=social.author), out.MyEngagement),
        (c.post(f"{url}/comments", headers=social.author, json={"text": "x"}), out.Comment),
        (c.get(f"{url}/comments"), out.CommentPage),
        (
            c.post("/touchpoints", headers=social.author, json=view),
            out.Touchpoint,
        ),
        (c.get(f"/creators/{social.creator}", headers=shop.headers), out.Creator),
        (c.post("/referral-links", headers=shop.headers, json=link), out.ReferralLink),
        (c.get("/referral-links/shape", headers=shop.headers), out.ReferralLink),
        (c.get("/r/shape", headers=social.author), out.Referral),
        (c.get("/promo-codes/" + social.promo()["code"], headers=shop.headers), out.PromoCode),
    ]
    for response, shape in checks:
        assert response.status_code in (200, 201), response.text
        msgspec.json.decode(response.content, type=shape)


def test_a_comment_is_deleted_by_its_author_or_the_notes_author(social: Social) -> None:
    c, note = social.client, social.note()
    url = f"/notes/{note['id']}/comments"
    ben, cai = sign_up(c, "ben"), sign_up(c, "cai")
    said = [c.post(url, headers=h, json={"text": t}).json() for h, t in
            ((ben, "一"), (cai, "二"), (ben, "三"))]  # fmt: skip
    assert_problem(c.delete(f"{url}/{said[0]['id']}", headers=cai), 404, "comment_id")
    assert_problem(c.delete(f"{url}/{uuid4()}", headers=ben), 404, "comment_id")
    assert_problem(c.delete(f"{url}/not-a-uuid", headers=ben), 404, "comment_id")
    assert_problem(c.delete(f"{url}/{said[0]['id']}"), 401)
    assert c.delete(f"{url}/{said[0]['id']}", headers=ben).status_code == 204  # its author
    assert c.delete(f"{url}/{said[1]['id']}", headers=social.author).status_code == 204  # note's
    assert c.delete(f"{url}/{said[1]['id']}", headers=social.author).status_code == 204  # again
    assert [i["text"] for i in c.get(url).json()["items"]] == ["三"]
    page = c.get(url, params={"limit": 2}).json()  # deleted ones keep their place
    assert page["items"] == [] and c.get(url, params={"cursor": page["next_cursor"]}).json()[
        "items"
    ] == [said[2]]
    assert c.get(f"/notes/{note['id']}").json()["counts"]["comments"] == 1
    assert topics(c).count("commerce.Note.CommentDeleted") == 2
