"""Notes listed by author (a profile) and by tagged product: newest first, paged, with counts,
following edits and deletions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.social.conftest import Social, assert_problem


def eventually(fetch: Callable[[], Any], ready: Callable[[Any], bool], seconds: float = 10.0):
    """The view follows the log a moment behind."""
    deadline = time.monotonic() + seconds
    while not ready(got := fetch()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def test_a_users_notes_list_newest_first_in_pages_with_their_counts(social: Social) -> None:
    c, shop = social.client, social.shop
    notes = [social.note(title=f"第{i}篇 #防晒", product_ids=[]) for i in range(3)]
    ids = [n["id"] for n in notes]
    other = social.note(headers=social.kol, title="not theirs")["id"]  # tags the product
    path = f"/buyers/{notes[0]['author_id']}/notes"
    eventually(lambda: c.get(path).json(), lambda b: len(b["items"]) == 3)
    listed = c.get(path, params={"limit": 2}).json()
    assert [i["id"] for i in listed["items"]] == ids[:0:-1]  # newest first
    newest = listed["items"][0]
    assert newest["title"] == "第2篇 #防晒" and newest["hashtags"] == ["防晒"]
    rest = c.get(path, params={"limit": 2, "cursor": listed["next_cursor"]}).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert other not in [i["id"] for i in listed["items"] + rest["items"]]

    assert c.post(f"/notes/{ids[2]}/like", headers=social.kol).status_code == 200
    edit = {"title": "改了", "body": "b", "product_ids": [shop.product]}
    assert c.put(f"/notes/{ids[1]}", headers=social.author, json=edit).status_code == 200
    assert c.delete(f"/notes/{ids[0]}", headers=social.author).status_code == 204

    def settled(body: dict) -> bool:
        items = {i["id"]: i for i in body["items"]}
        return (
            ids[0] not in items
            and items.get(ids[1], {}).get("title") == "改了"
            and (items.get(ids[2], {}).get("counts", {}).get("likes") == 1)
        )

    body = eventually(lambda: c.get(path).json(), settled)
    assert [i["id"] for i in body["items"]] == [ids[2], ids[1]]  # an edit keeps its place
    assert body["items"][1]["posted_at"] and body["items"][1]["edited_at"]
    tagged = eventually(lambda: c.get(f"/products/{shop.product}/notes").json(),
                        lambda b: len(b["items"]) == 2)  # fmt: skip
    assert [i["id"] for i in tagged["items"]] == [other, ids[1]]  # tagged since the edit


def test_note_lists_refuse_bad_input(social: Social) -> None:
    c = social.client
    assert_problem(c.get("/buyers/not-a-uuid/notes"), 404, "buyer_id")
    assert_problem(c.get("/products/xyz/notes"), 404, "product_id")
    assert_problem(c.get(f"/products/{social.shop.product}/notes", params={"limit": 0}), 422,
                   "limit")  # fmt: skip
    assert_problem(c.get(f"/products/{social.shop.product}/notes", params={"cursor": "%%"}),
                   422, "cursor")  # fmt: skip
    empty = c.get("/buyers/00000000-0000-4000-8000-000000000000/notes")  # posted nothing
    assert empty.status_code == 200 and empty.json() == {"items": [], "next_cursor": None}
