"""`GET /search` (products and notes, Chinese, English or mixed) and `GET /feed/trending`."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated

from litestar import Controller, get
from litestar.concurrency import sync_to_thread
from litestar.params import FromQuery, QueryParameter

from commerce.api.common import Cursor
from commerce.domain.errors import InvalidInput
from projections.api import responses as out
from projections.api.pages import Reads
from projections.read.ranking import TrendKey
from projections.read.search import KINDS, MAX_LIMIT, SearchFilters
from projections.search_index import search_index
from projections.trending import feed_sql

MAX_QUERY = 200
MAX_FACET = 100
COUNTRY = re.compile(r"^[A-Z]{2}$")
FEED_KINDS = ("note", "product")
SEARCH_LIMIT = {"minimum": 1, "maximum": MAX_LIMIT}
ORIGIN = {"pattern": "^[A-Z]{2}$"}


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"must be from 1 to {MAX_LIMIT}", field="limit")
    return limit


class SearchController(Controller):
    path = "/"
    tags = ("read models",)

    @get("/search")
    async def search(
        self,
        reads: Reads,
        q: FromQuery[str] = "",
        kind: Annotated[str | None, QueryParameter(schema_extra={"enum": list(KINDS)})] = None,
        category: FromQuery[str | None] = None,
        brand: FromQuery[str | None] = None,
        origin: Annotated[
            str | None,
            QueryParameter(description="origin country, e.g. JP", schema_extra=ORIGIN),
        ] = None,
        in_stock: FromQuery[bool | None] = None,
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(schema_extra=SEARCH_LIMIT)] = 20,
    ) -> out.SearchPage:
        """Products and notes by keyword, ranked by relevance (query terms in the title), then
        engagement. Any substring of 3+ characters matches (trigrams), shorter terms such as a
        two-character Chinese brand match as substrings. Facets limit results to products."""
        if len(q) > MAX_QUERY:
            raise InvalidInput(f"must be at most {MAX_QUERY} characters", field="q")
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"must be one of {', '.join(KINDS)}", field="kind")
        if origin is not None and not COUNTRY.match(origin):
            raise InvalidInput("must be an ISO 3166-1 alpha-2 code such as 'JP'", field="origin")
        for name, value in (("category", category), ("brand", brand)):
            if value is not None and not 0 < len(value) <= MAX_FACET:
                raise InvalidInput(f"must be 1 to {MAX_FACET} characters", field=name)
        filters = SearchFilters(category, brand, origin, in_stock)
        if not q.strip() and filters == SearchFilters():
            raise InvalidInput("give a query (q) or at least one filter", field="q")
        index = search_index(reads.store, await reads.generation("search"))
        try:
            page = await sync_to_thread(
                index.search, q, kind, filters, _limit(limit), cursor or None
            )
        except ValueError as exc:  # only the cursor can still be wrong here
            raise InvalidInput(str(exc), field="cursor") from None
        return {"items": [asdict(hit) for hit in page.hits], "next_cursor": page.next_cursor}

    @get("/feed/trending")
    async def trending(
        self,
        reads: Reads,
        kind: Annotated[str, QueryParameter(schema_extra={"enum": list(FEED_KINDS)})] = "note",
        limit: Annotated[int, QueryParameter(schema_extra=SEARCH_LIMIT)] = 20,
    ) -> out.TrendingFeed:
        """The explore feed: notes (or products) by time-decayed engagement velocity. Weights
        are settings (saves and shares weigh more than likes); `score_version` names them."""
        if kind not in FEED_KINDS:
            raise InvalidInput(f"must be one of {', '.join(FEED_KINDS)}", field="kind")
        rows = await reads.read("trending", feed_sql, (kind, _limit(limit)))
        config, now = reads.config.trending, reads.clock()
        items = [
            {"kind": kind, "id": item_id, "title": title,
             "score": round(TrendKey(float(mass)).score_at(now, config), 6)}
            for item_id, title, mass in rows
        ]  # fmt: skip
        return {
            "items": items,
            "score_version": config.weights.version,
            "half_life_hours": config.half_life.total_seconds() / 3600,
            "as_of": now.isoformat(),
        }
