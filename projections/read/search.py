"""Search over products and notes, CJK-aware without a word segmenter.

Chinese has no spaces, and a segmenter (jieba and the like) is a dependency with a dictionary
to curate. Trigrams match any substring of three or more characters in any script. So
"防晒霜" finds "资生堂安热沙防晒霜", and "Anessa" finds "ANESSA 防晒乳":

- SQLite: an FTS5 table with `tokenize='trigram'` (SQLite >= 3.34).
- PostgreSQL: `pg_trgm`, with a GIN trigram index that serves ILIKE.

Trigrams cannot match a one- or two-character term such as "防晒". For those terms we run a
LIKE/ILIKE substring scan over the same table instead.

Results are ordered by relevance, then engagement. Relevance is an integer: one point for each
query term found in the title, plus one if the whole query appears there. The engine's own
score (bm25 over trigrams, trigram similarity) breaks ties only. Without segmentation it mostly
rewards short documents, and it differs between the engines, while the integer tiers are the
same on both. Pages are keyset cursors over the full sort key.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projections.sqlstore import SqlStore

SQLITE_TRIGRAM_MIN = (3, 34, 0)
TRIGRAM = 3
MAX_TERMS = 8
MAX_LIMIT = 100
KINDS = ("product", "note")

_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS search_docs (rid INTEGER PRIMARY KEY, doc_key TEXT NOT NULL"
    " UNIQUE, kind TEXT NOT NULL, doc_id TEXT NOT NULL, brand TEXT, category TEXT,"
    " origin_country TEXT, in_stock BOOLEAN, engagement DOUBLE PRECISION NOT NULL)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(title, body, tokenize='trigram')",
)
_PG_SCHEMA = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE TABLE IF NOT EXISTS search_docs (doc_key TEXT PRIMARY KEY, kind TEXT NOT NULL,"
    " doc_id TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, brand TEXT, category TEXT,"
    " origin_country TEXT, in_stock BOOLEAN, engagement DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS search_docs_text_trgm ON search_docs"
    " USING gin ((title || ' ' || body) gin_trgm_ops)",
)
_COLUMNS = "doc_key, kind, doc_id, brand, category, origin_country, in_stock, engagement"
_UPDATE = (
    "brand = excluded.brand, category = excluded.category, origin_country ="
    " excluded.origin_country, in_stock = excluded.in_stock, engagement = excluded.engagement"
)


@dataclass(frozen=True)
class SearchFilters:
    """Product facets. Notes have none, so any filter limits results to products."""

    category: str | None = None
    brand: str | None = None
    origin_country: str | None = None
    in_stock: bool | None = None


@dataclass(frozen=True)
class SearchHit:
    kind: str
    id: str
    title: str
    relevance: int
    engagement: float


@dataclass(frozen=True)
class SearchPage:
    hits: tuple[SearchHit, ...]
    next_cursor: str | None


class SearchIndex:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.dialect = store.dialect

    def schema(self) -> tuple[str, ...]:
        if self.dialect == "postgres":
            return _PG_SCHEMA
        if sqlite3.sqlite_version_info < SQLITE_TRIGRAM_MIN:
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} has no FTS5 trigram tokenizer (needs >= 3.34)"
            )
        return _SQLITE_SCHEMA

    def migrate(self) -> None:
        with self.store.transaction() as cur:
            for ddl in self.schema():
                cur.execute(ddl)

    def upsert_product(
        self,
        cur: Any,
        id: str,
        title: str,
        brand: str,
        category: str,
        origin_country: str,
        in_stock: bool,
        engagement: float,
    ) -> None:
        facets = (brand, category, origin_country, in_stock)
        self._upsert(cur, "product", id, title, f"{brand} {category}", facets, engagement)

    def upsert_note(
        self,
        cur: Any,
        id: str,
        title: str,
        body: str,
        hashtags: Sequence[str],
        engagement: float,
    ) -> None:
        text = " ".join([body, *(f"#{tag.lstrip('#')}" for tag in hashtags)])
        self._upsert(cur, "note", id, title, text, (None, None, None, None), engagement)

    def set_engagement(self, cur: Any, kind: str, id: str, engagement: float) -> None:
        """Counters move far more often than text; this skips re-indexing the text."""
        cur.execute(
            "UPDATE search_docs SET engagement = %s WHERE doc_key = %s",
            (engagement, _doc_key(kind, id)),
        )

    def delete(self, cur: Any, kind: str, id: str) -> None:
        if self.dialect == "postgres":
            cur.execute("DELETE FROM search_docs WHERE doc_key = %s", (_doc_key(kind, id),))
            return
        cur.execute(
            "DELETE FROM search_docs WHERE doc_key = %s RETURNING rid", (_doc_key(kind, id),)
        )
        row = cur.fetchone()
        if row:
            cur.execute("DELETE FROM search_text WHERE rowid = %s", (row[0],))

    def search(
        self,
        query: str,
        kind: str | None = None,
        filters: SearchFilters | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        terms = list(dict.fromkeys(query.split()))[:MAX_TERMS]
        limit = max(1, min(limit, MAX_LIMIT))
        sql, params = self._ranked_sql(terms, kind, filters or SearchFilters())
        if cursor is not None:
            sql += " WHERE (rel, engagement, score, doc_key) < (%s, %s, %s, %s)"
            params.extend(_decode_cursor(cursor))
        sql += " ORDER BY rel DESC, engagement DESC, score DESC, doc_key DESC LIMIT %s"
        rows = self.store.query(sql, [*params, limit + 1])
        page = rows[:limit]
        hits = tuple(SearchHit(r[0], r[1], r[2], int(r[3]), float(r[4])) for r in page)
        more = len(rows) > limit
        return SearchPage(hits, _encode_cursor(page[-1][3:7]) if more else None)

    def _upsert(
        self,
        cur: Any,
        kind: str,
        id: str,
        title: str,
        body: str,
        facets: tuple[Any, ...],
        engagement: float,
    ) -> None:
        row = (_doc_key(kind, id), kind, id, *facets, engagement)
        if self.dialect == "postgres":
            cur.execute(
                f"INSERT INTO search_docs ({_COLUMNS}, title, body) VALUES"  # noqa: S608
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (doc_key) DO UPDATE SET"
                f" {_UPDATE}, title = excluded.title, body = excluded.body",
                (*row, title, body),
            )
            return
        cur.execute(
            f"INSERT INTO search_docs ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
            f" ON CONFLICT (doc_key) DO UPDATE SET {_UPDATE} RETURNING rid",
            row,
        )
        rid = cur.fetchone()[0]
        cur.execute("DELETE FROM search_text WHERE rowid = %s", (rid,))
        cur.execute(
            "INSERT INTO search_text (rowid, title, body) VALUES (%s, %s, %s)", (rid, title, body)
        )

    def _ranked_sql(
        self, terms: list[str], kind: str | None, filters: SearchFilters
    ) -> tuple[str, list[Any]]:
        """The ranked rows as a subquery, so the cursor can compare against the sort key."""
        postgres = self.dialect == "postgres"
        like = "ILIKE" if postgres else "LIKE"
        # On SQLite the text lives in the FTS5 table. The concatenations below are expressions,
        # not bare columns, so FTS5 never gets to plan the LIKE itself: SQLite 3.40 returns no
        # rows for a bare `title LIKE '%防晒%'` on a trigram table (under 3 chars, over 3 bytes).
        title = "title" if postgres else "(search_text.title || '')"
        text = (
            "(title || ' ' || body)"
            if postgres
            else "(search_text.title || ' ' || search_text.body)"
        )
        rel_parts = [f"CASE WHEN {title} {like} %s ESCAPE '\\' THEN 1 ELSE 0 END" for _ in terms]
        rel_params: list[Any] = [_contains(t) for t in terms]
        if len(terms) > 1:
            rel_parts.append(f"CASE WHEN {title} {like} %s ESCAPE '\\' THEN 1 ELSE 0 END")
            rel_params.append(_contains(" ".join(terms)))
        rel = " + ".join(rel_parts) or "0"
        where: list[str] = []
        where_params: list[Any] = []
        long_terms = [t for t in terms if len(t) >= TRIGRAM]
        if postgres:
            score, score_params = f"similarity({text}, %s)::float8", [" ".join(terms)]
            source = "search_docs"
            prefix = ""
            where_terms = terms  # ILIKE: the GIN index serves terms of 3+ characters
        else:
            score, score_params = "0.0", []
            if long_terms:
                score = "-bm25(search_text, 10.0, 1.0)"
                where.append("search_text MATCH %s")
                where_params.append(" ".join('"' + t.replace('"', '""') + '"' for t in long_terms))
            source = "search_text JOIN search_docs d ON d.rid = search_text.rowid"
            prefix = "d."
            where_terms = [t for t in terms if len(t) < TRIGRAM]
        for term in where_terms:
            where.append(f"{text} {like} %s ESCAPE '\\'")
            where_params.append(_contains(term))
        for column in ("category", "brand", "origin_country", "in_stock"):
            value = getattr(filters, column)
            if value is not None:
                where.append(f"{prefix}{column} = %s")
                where_params.append(value)
        if kind is not None:
            where.append(f"{prefix}kind = %s")
            where_params.append(kind)
        sql = (
            f"SELECT {prefix}kind, {prefix}doc_id, {title} AS title, {rel} AS rel,"  # noqa: S608
            f" {prefix}engagement AS engagement, {score} AS score, {prefix}doc_key AS doc_key"
            f" FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
        )
        return (
            f"SELECT kind, doc_id, title, rel, engagement, score, doc_key FROM ({sql}) AS ranked",  # noqa: S608
            [*rel_params, *score_params, *where_params],
        )


def _doc_key(kind: str, id: str) -> str:
    return f"{kind}:{id}"


def _contains(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _encode_cursor(sort_key: Sequence[Any]) -> str:
    raw = json.dumps([int(sort_key[0]), float(sort_key[1]), float(sort_key[2]), sort_key[3]])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        rel, engagement, score, doc_key = json.loads(base64.urlsafe_b64decode(cursor))
        return [int(rel), float(engagement), float(score), str(doc_key)]
    except (ValueError, TypeError) as error:
        raise ValueError("malformed search cursor") from error
