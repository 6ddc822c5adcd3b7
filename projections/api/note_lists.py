"""`GET /buyers/{id}/notes` (a user's profile) and `GET /products/{id}/notes`: newest first."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import FromPath

from commerce.api.common import (
    MAX_PAGE,
    Cursor,
    PageLimit,
    _decode_cursor,
    _encode_cursor,
    path_uuid,
)
from commerce.domain.errors import InvalidInput
from projections.api import responses as out
from projections.api.pages import Reads
from projections.note_lists import by_author_sql, by_product_sql, list_item

LAST = 2**62  # a seq no note reaches: the first page starts below it


async def _page(reads: Reads, sql: Any, key: str, cursor: str | None, limit: int) -> dict:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be from 1 to {MAX_PAGE}", field="limit")
    before = _decode_cursor(cursor)
    rows = await reads.read("note_lists", sql, (key, LAST if before is None else before,
                                                 limit + 1))  # fmt: skip
    more = len(rows) > limit
    return {
        "items": [list_item(row) for row in rows[:limit]],
        "next_cursor": _encode_cursor(int(rows[limit - 1][2])) if more else None,
    }


class NoteListController(Controller):
    path = "/"
    tags = ("notes",)

    @get("/buyers/{buyer_id:str}/notes")
    async def by_author(
        self,
        buyer_id: FromPath[str],
        reads: Reads,
        cursor: Cursor = None,
        limit: PageLimit = 20,
    ) -> out.NoteList:
        """What a user has posted, newest first, with each note's counts (public, like the
        notes themselves). Deleted notes are gone from the list."""
        key = str(path_uuid(buyer_id, "buyer"))
        return await _page(reads, by_author_sql, key, cursor, limit)

    @get("/products/{product_id:str}/notes")
    async def by_product(
        self,
        product_id: FromPath[str],
        reads: Reads,
        cursor: Cursor = None,
        limit: PageLimit = 20,
    ) -> out.NoteList:
        """Every note that tags the product, newest first (the product page shows the best)."""
        key = str(path_uuid(product_id, "product"))
        return await _page(reads, by_product_sql, key, cursor, limit)
