"""Batched projections: a batch of events decided in memory, its rows read and written in bulk.

`projections.runner.ProjectionRunner` already commits a batch per transaction, but calls
`apply` once per event, and a projection that reads and writes a few rows per event pays a round
trip for each: on PostgreSQL that, not the events, bounds a rebuild. A projection with
`apply_batch(cur, facts)` gets the whole batch: it loads the rows the batch names with a few
`IN (...)` queries, changes them in memory and upserts each changed row once (`Batch`).

`BatchRunner` (what rebuilds and live workers run) is `ProjectionRunner` with that one
difference, plus a faster decoder: when the application stores plain JSON (no cipher, no
compression, no upcasting), events are decoded by msgspec into dicts and never become domain
objects. Values then arrive in the transcoder's
tagged form (`{"_type_": "uuid_hex", "_data_": …}`), so projections read them through `as_id`
and `as_datetime`, which accept both forms; `apply(cur, event, position)` keeps working under
the plain runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder
from eventsourcing.utils import get_topic, resolve_topic

from projections.runner import FollowingRunner, ProjectionRunner

CHUNK = 500  # keys per IN (...): well under SQLite's 32,766 bound parameters
# Column types for PostgreSQL's unnest(); columns not named here are text.
TYPES = {"seq": "bigint", "amount_fen": "bigint", "lock_at": "float8", "payable_at": "float8"}


def is_postgres(cur: Any) -> bool:
    return getattr(cur, "connection", None) is not None  # psycopg; the SQLite wrapper has none


def upsert(
    cur: Any,
    table: str,
    columns: tuple[str, ...],
    rows: list,
    on_conflict: str,
    types: dict = TYPES,
) -> None:
    """Insert or update many rows in one statement per batch.

    PostgreSQL gets one `INSERT ... SELECT` from a JSON array of the rows: one parameter, so a
    thousand rows cost one round trip, and the client's work is one msgspec encoding (in C);
    PostgreSQL takes the rows apart, on its own core. (executemany was ~35 µs a row in psycopg;
    unnest() of one array per column spent ~6 µs a row dumping the arrays in Python, holding
    the GIL the next batch is decided with.) SQLite, in process, takes executemany.
    """
    names = ", ".join(columns)
    if is_postgres(cur):
        cells = ", ".join(_cell(i, types.get(c, "text")) for i, c in enumerate(columns))
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {cells}"  # noqa: S608
            f" FROM json_array_elements(%s::json) AS r {on_conflict}"
        )
        cur.execute(sql, (msgspec.json.encode(rows).decode(),))
    else:
        marks = ", ".join(["%s"] * len(columns))
        cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {on_conflict}", rows)  # noqa: S608


def _cell(index: int, kind: str) -> str:
    return f"r->>{index}" if kind == "text" else f"(r->>{index})::{kind}"


@dataclass(slots=True)
class Fact:
    """An event as a projection sees it: its topic, originator, fields and log position."""

    topic: str
    oid: str
    data: dict
    position: int


def fact_from_event(event: Any, position: int) -> Fact:
    return Fact(get_topic(type(event)), str(event.originator_id), vars(event), position)


def as_id(value: Any) -> str | None:
    """A UUID (object, tagged hex, or string) as its canonical string."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value.get("_type_") != "uuid_hex":
            return value["_data_"]
        return _dashed(value["_data_"])
    return str(value)


@lru_cache(maxsize=65_536)
def _dashed(h: str) -> str:
    """Ids recur (buyers, merchants, creators): a rebuild formats each once."""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value["_data_"] if isinstance(value, dict) else value)


class Rows:
    """One table's rows touched by a batch: loaded in bulk, changed in memory, upserted once.

    A row is a dict of its columns without the key; `body` is JSON text in the table and a
    decoded object here.
    """

    def __init__(
        self,
        cur: Any,
        table: str,
        columns: tuple[str, ...],
        kept: dict | None = None,
        complete: bool = False,
    ) -> None:
        """`kept`: rows earlier batches of this runner left (RowCache), used as they are;
        `complete`: they are all the table has."""
        self.cur, self.table, self.columns = cur, table, columns
        self.rows: dict[str, dict | None] = {} if kept is None else kept
        self.complete = complete
        self.dirty: set[str] = set()

    def load(self, keys: Iterable[str]) -> None:
        wanted = [k for k in set(keys) if k not in self.rows]
        if self.complete:
            self.rows.update(dict.fromkeys(wanted))
            return
        select = f"SELECT id, {', '.join(self.columns)} FROM {self.table} WHERE id"  # noqa: S608
        postgres = is_postgres(self.cur)
        for i in range(0, len(wanted), 100 * CHUNK if postgres else CHUNK):
            chunk = wanted[i : i + (100 * CHUNK if postgres else CHUNK)]
            if postgres:
                self.cur.execute(f"{select} = ANY(%s)", (chunk,))
            else:
                self.cur.execute(f"{select} IN ({', '.join(['%s'] * len(chunk))})", chunk)
            for key, *values in self.cur.fetchall():
                row = dict(zip(self.columns, values, strict=True))
                if "body" in row:
                    row["body"] = msgspec.json.decode(row["body"])
                self.rows[key] = row
        for key in wanted:
            self.rows.setdefault(key, None)

    def get(self, key: str) -> dict | None:
        if key not in self.rows:
            self.load([key])
        return self.rows[key]

    def put(self, key: str, row: dict) -> None:
        self.rows[key] = row
        self.dirty.add(key)

    def flush(self) -> None:
        if not self.dirty:
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.columns)
        values = []
        for key in sorted(self.dirty):  # a stable order: concurrent writers cannot deadlock
            row = self.rows[key]
            assert row is not None
            values.append(
                [key]
                + [
                    msgspec.json.encode(row[c]).decode() if c == "body" else row[c]
                    for c in self.columns
                ]
            )
        upsert(self.cur, self.table, ("id", *self.columns), values,
               f"ON CONFLICT (id) DO UPDATE SET {updates}")  # fmt: skip
        self.dirty.clear()


class Counters:
    """Counter rows a batch adds to: deltas are summed in memory, then added in one upsert each.

    `add(key, {"merchant_id": m, "day": d}, placed=1)`: the fixed columns are written when the
    row is new; the counters are added to whatever the row holds, so no read is needed.
    """

    def __init__(self, cur: Any, table: str, fixed: tuple[str, ...], counters: tuple[str, ...]):
        self.cur, self.table, self.fixed, self.counters = cur, table, fixed, counters
        self.rows: dict[str, tuple[dict, dict[str, int]]] = {}

    def add(self, key: str, fixed: dict, **deltas: int) -> None:
        _, sums = self.rows.setdefault(key, (fixed, dict.fromkeys(self.counters, 0)))
        for name, delta in deltas.items():
            sums[name] += delta

    def flush(self) -> None:
        if not self.rows:
            return
        adds = ", ".join(f"{c} = {self.table}.{c} + excluded.{c}" for c in self.counters)
        rows = [
            [key, *(fixed[c] for c in self.fixed), *(sums[c] for c in self.counters)]
            for key, (fixed, sums) in sorted(self.rows.items())
        ]
        columns = ("id", *self.fixed, *self.counters)
        conflict = f"ON CONFLICT (id) DO UPDATE SET {adds}"
        upsert(
            self.cur, self.table, columns, rows, conflict, dict.fromkeys(self.counters, "bigint")
        )
        self.rows.clear()


class RowCache:
    """The rows a runner's batches loaded and wrote, kept for its next batch, so a rebuild
    reads back only rows it has not seen (an order placed in one batch and paid in the next,
    a buyer's journey). It holds only while this runner is the view's one writer: the next
    batch must start at the position the last committed one left (`begin`), else another
    process moved the view, or the batch failed and its changes were rolled back, and the
    rows are forgotten. Past `limit` rows it starts afresh, to bound memory.

    Kept from position 0 (a rebuild) and never forgotten since, it is `complete`: it holds every
    row the view has, so a key it lacks names no row and is not looked up."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.tables: dict[str, dict[str, dict | None]] = {}
        self.valid_at: int | None = None
        self.complete = False

    def begin(self, position: int) -> None:
        if self.valid_at != position:
            self.tables.clear()
            self.complete = position == 0  # nothing applied yet: the view's tables are empty
        self.valid_at = None  # until this batch commits

    def committed(self, position: int) -> None:
        if self.too_big():
            self.tables.clear()
            self.complete = False
        self.valid_at = position

    def too_big(self) -> bool:
        return sum(map(len, self.tables.values())) > self.limit

    def forget(self) -> None:
        self.tables.clear()
        self.valid_at, self.complete = None, False

    def table(self, name: str) -> dict[str, dict | None]:
        return self.tables.setdefault(name, {})


class Batch:
    """Named `Rows` and `Counters` for one transaction: `Batch(cur, {"orders": (table, cols)})`."""

    def __init__(
        self,
        cur: Any,
        tables: dict[str, tuple[str, tuple[str, ...]]],
        counters: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] | None = None,
        cache: RowCache | None = None,
    ) -> None:
        if is_postgres(cur):  # a view's rows and its tracking are lost or kept together, so a
            # crash can only make it apply the last batches again (research §5.5: +60 %)
            cur.execute("SET LOCAL synchronous_commit = off")
        self._parts: dict[str, Rows | Counters] = {
            name: Rows(cur, table, cols, *((cache.table(table), cache.complete) if cache else ()))
            for name, (table, cols) in tables.items()
        }
        for name, (table, fixed, sums) in (counters or {}).items():
            self._parts[name] = Counters(cur, table, fixed, sums)
        for name, part in self._parts.items():  # `b.orders`, `b.daily`, ...
            setattr(self, name, part)

    def flush(self) -> None:
        for part in self._parts.values():
            part.flush()


class Batched:
    """The runner's batch protocol for a projection that decides a whole batch at once:
    `apply` only gathers, `end_batch` hands everything to `apply_batch(cur, facts)`. Called
    outside a batch, `apply` decides at once."""

    _facts: list[Fact] | None = None

    def apply_batch(self, cur: Any, facts: list[Fact]) -> None:
        raise NotImplementedError

    def begin_batch(self, cur: Any) -> None:
        self._facts = []

    def apply(self, cur: Any, event: Any, position: int) -> None:
        fact = fact_from_event(event, position)
        if self._facts is None:
            self.apply_batch(cur, [fact])
        else:
            self._facts.append(fact)

    def end_batch(self, cur: Any) -> None:
        facts, self._facts = self._facts or [], None
        if facts:
            self.apply_batch(cur, facts)


class BatchRunner(ProjectionRunner):
    """`ProjectionRunner` that hands a projection with `apply_batch` the whole batch at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast = _plain_json(self.app, self.projection.topics)
        self._decoder = msgspec.json.Decoder()

    def facts(self, notes: list[Any]) -> list[Fact]:
        if self._fast:
            decode = self._decoder.decode
            return [Fact(n.topic, str(n.originator_id), decode(n.state), n.id) for n in notes]
        to_event = self.app.mapper.to_domain_event
        return [fact_from_event(to_event(n), n.id) for n in notes]

    def _prepare(self, notes: list[Any]) -> Any:
        if not hasattr(self.projection, "apply_batch"):
            return super()._prepare(notes)
        return self.facts(notes)

    def _apply_batch(self, cur: Any, batch: Any) -> None:
        if not hasattr(self.projection, "apply_batch"):
            super()._apply_batch(cur, batch)
        elif batch:
            self.projection.apply_batch(cur, batch)  # type: ignore[attr-defined]

    def catch_up(self, on_batch: Callable[[int], None] | None = None) -> int:
        """With more than a batch to apply, the next batch is decided while one is written
        (projections.pipeline), for views that qualify."""
        from projections import pipeline  # it builds on this module

        if pipeline.pipelines(self):
            # how far behind, by the position this runner last saw (no query: a live worker
            # passes here on every commit; the pipeline reads the real position itself)
            behind = (self.app.recorder.max_notification_id() or 0) - self.position
            if behind > self.batch_size:
                return pipeline.catch_up(self, on_batch)
        return super().catch_up(on_batch)


class FollowingBatchRunner(FollowingRunner, BatchRunner):
    """The live runner of a blue/green view (`FollowingRunner`) with the batch decoder."""


def _plain_json(app: Any, topics: tuple[str, ...]) -> bool:
    """Whether stored state is the default JSON with nothing to upcast: msgspec reads it."""
    mapper = app.mapper
    if mapper.cipher or mapper.compressor or type(mapper.transcoder) is not JSONTranscoder:
        return False
    for topic in topics:
        try:
            cls = resolve_topic(topic)
        except Exception:  # noqa: S112 (not written by this process yet: no class to upcast)
            continue
        if getattr(cls, "class_version", 1) != 1:
            return False
    return True
