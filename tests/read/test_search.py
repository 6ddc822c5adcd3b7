"""Search on both stores: Chinese, English and mixed queries, filters, order, pages, no match."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.read.search import SearchFilters, SearchIndex
from projections.sqlstore import SqlStore

PRODUCTS = [
    # id, title, brand, category, origin, in stock, engagement
    ("p1", "资生堂安热沙防晒霜 SPF50+", "Anessa", "sunscreen", "JP", True, 50.0),
    ("p2", "Anessa Perfect UV 防晒乳", "Anessa", "sunscreen", "JP", False, 80.0),
    ("p3", "雪花秀滋盈肌本润颜水", "Sulwhasoo", "toner", "KR", True, 30.0),
    ("p4", "La Roche-Posay 理肤泉 防晒喷雾", "La Roche-Posay", "sunscreen", "FR", True, 10.0),
]
NOTES = [
    ("n1", "夏天必备防晒清单", "安热沙小金瓶真的好用", ["防晒", "好物"], 120.0),
    ("n2", "Sulwhasoo toner review", "雪花秀 toner 很滋润 100% 推荐", ["护肤"], 5.0),
]


@pytest.fixture
def index(store_url: str | None, tmp_path: Path) -> Iterator[SearchIndex]:
    store = SqlStore.open(store_url, tmp_path)
    search = SearchIndex(store)
    search.migrate()
    with store.transaction() as cur:
        for row in PRODUCTS:
            search.upsert_product(cur, *row)
        for row in NOTES:
            search.upsert_note(cur, *row)
    yield search
    store.close()


def ids(index: SearchIndex, query: str, **kwargs) -> list[str]:
    return [hit.id for hit in index.search(query, **kwargs).hits]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("防晒", ["n1", "p2", "p1", "p4"], id="two CJK chars: substring fallback"),
        pytest.param("防晒霜", ["p1"], id="three CJK chars: trigram"),
        pytest.param("安热沙", ["p1", "n1"], id="title match outranks more engagement"),
        pytest.param("anessa", ["p2", "p1"], id="english, any case, title before brand"),
        pytest.param("Anessa 防晒", ["p2", "p1"], id="mixed: every term must match"),
        pytest.param("#好物", ["n1"], id="hashtag"),
        pytest.param("toner", ["n2", "p3"], id="category word and note title"),
        pytest.param("兰蔻", [], id="no match, short"),
        pytest.param("Lancôme 小黑瓶", [], id="no match, mixed"),
        pytest.param("%", ["n2"], id="LIKE wildcards are literal"),
        pytest.param("_", [], id="underscore is literal"),
    ],
)
def test_queries(index, query, expected):
    assert ids(index, query) == expected


def test_relevance_counts_terms_in_the_title(index):
    hits = index.search("Anessa 防晒").hits
    assert [(h.id, h.relevance) for h in hits] == [("p2", 2), ("p1", 1)]
    assert hits[0].title == "Anessa Perfect UV 防晒乳" and hits[0].kind == "product"


def test_filters(index):
    assert ids(index, "防晒", filters=SearchFilters(in_stock=True)) == ["p1", "p4"]
    assert ids(index, "防晒", filters=SearchFilters(origin_country="JP")) == ["p2", "p1"]
    assert ids(index, "", filters=SearchFilters(category="toner")) == ["p3"]
    assert ids(index, "防晒", filters=SearchFilters(brand="Anessa", in_stock=True)) == ["p1"]
    assert ids(index, "防晒", kind="note") == ["n1"]
    assert ids(index, "防晒", kind="product") == ["p2", "p1", "p4"]
    with pytest.raises(ValueError):
        index.search("防晒", kind="live")


def test_pages_follow_the_cursor_to_the_end(index):
    first = index.search("防晒", limit=3)
    assert [h.id for h in first.hits] == ["n1", "p2", "p1"]
    second = index.search("防晒", limit=3, cursor=first.next_cursor)
    assert [h.id for h in second.hits] == ["p4"]
    assert second.next_cursor is None
    with pytest.raises(ValueError, match="cursor"):
        index.search("防晒", cursor="not-a-cursor")


def test_upsert_engagement_and_delete_update_the_index(index):
    with index.store.transaction() as cur:
        index.upsert_product(
            cur, "p4", "理肤泉 大哥大 喷雾", "La Roche-Posay", "sunscreen", "FR", True, 10
        )
        index.set_engagement(cur, "product", "p1", 500.0)
        index.delete(cur, "note", "n1")
    assert ids(index, "防晒") == ["p1", "p2"]
    assert ids(index, "大哥大") == ["p4"]
    with index.store.transaction() as cur:
        index.delete(cur, "product", "missing")  # deleting twice or never indexed is fine
        index.delete(cur, "note", "n1")


def test_old_sqlite_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 33, 0))
    with pytest.raises(RuntimeError, match="trigram"):
        SearchIndex(SqlStore.open(None, tmp_path)).schema()
