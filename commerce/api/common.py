"""Helpers shared by the controllers: answers, cursors, uuid path parsing."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, TypeAlias
from uuid import UUID

from litestar import Response
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from commerce.api.runtime import CommerceRuntime
from commerce.domain.errors import InvalidInput, NotFound
from commerce.services.idempotency import Answer
from projections.sqlstore import missing_table

MAX_PAGE = 200
# Query parameters with their rules in the OpenAPI document (checked by the handlers: 422).
PageLimit: TypeAlias = Annotated[
    int, QueryParameter(schema_extra={"minimum": 1, "maximum": MAX_PAGE}, description="page size")
]
Cursor: TypeAlias = Annotated[
    str | None, QueryParameter(description="`next_cursor` of the previous page, as given")
]


def answer(a: Answer, **extra: Any) -> Response:
    headers = {"Idempotent-Replayed": "true"} if a.replayed else {}
    return Response(a.body | extra, status_code=a.status_code, headers=headers)


def path_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"no such {what}", field=f"{what}_id") from None


def body_uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput("must be a UUID", field=field) from None


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("is not a cursor this API gave out", field="cursor") from None


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


async def page(
    runtime: NamedDependency[CommerceRuntime],
    view: str,
    where: dict[str, str],
    cursor: str | None,
    limit: int,
    decorate: Any = None,
) -> dict:
    """A page of list view `view` (projections.commerce_lists.TABLES), newest first;
    `next_cursor` is null on the last page."""
    from litestar.concurrency import sync_to_thread

    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be from 1 to {MAX_PAGE}", field="limit")
    before = _decode_cursor(cursor)
    await runtime.caught_up()
    table = runtime.list_table(view)
    clauses = [f"{column} = %s" for column in where]
    params: list[Any] = list(where.values())
    if before is not None:
        clauses.append("seq < %s")
        params.append(before)
    where_sql = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = "SELECT seq, body FROM {}" + where_sql + " ORDER BY seq DESC LIMIT %s"  # noqa: S608 (names are ours)
    try:
        rows = await sync_to_thread(runtime.store.query, sql.format(table), [*params, limit + 1])
    except Exception as exc:
        if not missing_table(exc):
            raise
        await sync_to_thread(runtime.lists.refollow)  # a rebuild dropped it: read the new one
        await runtime.caught_up()
        table = runtime.list_table(view)
        rows = await sync_to_thread(runtime.store.query, sql.format(table), [*params, limit + 1])
    items = [json.loads(body) for _, body in rows[:limit]]
    if decorate:
        items = [decorate(item) for item in items]
    more = len(rows) > limit
    return {"items": items, "next_cursor": _encode_cursor(rows[limit - 1][0]) if more else None}
