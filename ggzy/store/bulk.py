"""Bulk reads and writes of the ingest path, in statements of a fixed shape built once.

``match_many`` looks up many rows by many composite keys. ``WHERE (a, b) IN (…)`` grows with the
number of keys, so SQLAlchemy compiles a new statement for every size and binds every value
separately; a batch of a thousand records asks for a thousand keys of a dozen tables. Here the
wanted keys travel as one parameter (a JSON array unpacked with ``json_each`` on SQLite, parallel
arrays unpacked with ``unnest`` on PostgreSQL) and each is looked up through the primary-key index.

``insert_many`` writes rows with the driver's ``executemany`` (``COPY`` for plain inserts on
PostgreSQL), the values converted by the columns' own SQLAlchemy types: the same stored values as
``connection.execute(insert(table), rows)`` without building a parameter dictionary per row. An
insert with ``ON CONFLICT`` on PostgreSQL is one statement over the rows sent as one JSON text
(``INSERT … SELECT FROM json_to_recordset(…)``): executed row by row, it cost the server about twice
the CPU per row, and column arrays cost the driver more than the rows' JSON costs orjson.

On SQLite the bind values are made in C where SQLAlchemy makes them in Python or twice: a dict or list
of a JSON column is orjson's UTF-8 bytes, stored as text by ``CAST(? AS TEXT)`` (a ``str`` of Chinese
text would be encoded by the driver again), a ``datetime`` is written by ``isoformat``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from psycopg.types.json import Json, Jsonb
from sqlalchemy import JSON, Column, Connection, DateTime, Dialect, Row, Table, TextualSelect, text
from sqlalchemy.exc import IntegrityError

from ggzy.store.database import JsonText, compact_json_utf8

__all__ = ["insert_many", "match_many"]


def match_many(
    connection: Connection,
    table: Table,
    match: Sequence[str],
    wanted: Collection[Sequence[str]],
    *,
    columns: Sequence[Column[Any]],
    where: Mapping[str, str] | None = None,
    join: tuple[Table, Sequence[str]] | None = None,
    partial: str | None = None,
) -> list[Row[Any]]:
    """Rows of ``table`` whose ``match`` columns equal one of the ``wanted`` tuples.

    ``where`` adds equality conditions on ``table``; ``join`` adds another table joined on the named
    columns they share. ``columns`` (of ``table`` or the joined table, distinct names) are returned,
    converted by their types as a ``select`` would. ``partial`` repeats the condition of a partial
    index to search (``"deal_code IS NOT NULL"``, on ``t``): SQLite uses such an index only when the
    query says so itself (it does not infer it from an equality with a bound ``json_each`` value).
    """
    if not wanted:
        return []
    fixed = dict(where or {})
    statement = _statement(
        connection.dialect.name,
        table,
        tuple(match),
        tuple(sorted(fixed)),
        (join[0], tuple(join[1])) if join is not None else None,
        tuple(columns),
        partial,
    )
    parameters: dict[str, Any] = {f"f_{name}": value for name, value in fixed.items()}
    # One JSON text (orjson, in C) rather than one array per column, which the driver builds element
    # by element in Python.
    parameters["wanted"] = orjson.dumps([list(item) for item in wanted]).decode()
    return list(connection.execute(statement, parameters))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@cache
def _statement(
    dialect: str,
    table: Table,
    match: tuple[str, ...],
    fixed: tuple[str, ...],
    join: tuple[Table, tuple[str, ...]] | None,
    columns: tuple[Column[Any], ...],
    partial: str | None = None,
) -> TextualSelect:
    alias = {table.name: "t"}
    if join is not None:
        alias[join[0].name] = "j"
    selected = ", ".join(f"{alias[str(column.table.name)]}.{_q(column.name)}" for column in columns)
    conditions = [f"t.{_q(name)} = :f_{name}" for name in fixed]
    if partial is not None:
        conditions.append(f"t.{partial}")
    if dialect == "postgresql":
        # LATERAL (kept a subquery by OFFSET 0) fixes the loop order, as CROSS JOIN does in SQLite:
        # one index search per wanted key. A plain join is planned from the table's statistics,
        # and a young table's (none yet, or from when it was small) made the planner hash the
        # whole table for every batch.
        inner = [f"t.{_q(name)} = w.v ->> {index}" for index, name in enumerate(match)] + conditions
        source = (
            "json_array_elements(CAST(:wanted AS json)) AS w(v) CROSS JOIN LATERAL "
            f"(SELECT * FROM {_q(table.name)} AS t WHERE {' AND '.join(inner)} OFFSET 0) AS t"
        )
        conditions = []
    else:
        # CROSS JOIN fixes the loop order in SQLite: for each wanted key, one index lookup.
        source = f"json_each(:wanted) AS w CROSS JOIN {_q(table.name)} AS t"
        conditions += [
            f"t.{_q(name)} = json_extract(w.value, '$[{index}]')" for index, name in enumerate(match)
        ]
    if join is not None:
        other, shared = join
        source += f" JOIN {_q(other.name)} AS j ON " + " AND ".join(
            f"j.{_q(name)} = t.{_q(name)}" for name in shared
        )
    sql = f"SELECT {selected} FROM {source}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return text(sql).columns(*columns)


@dataclass(frozen=True)
class _BinaryCopy:
    """How a PostgreSQL table's columns travel in a binary COPY, and what each must hold for it."""

    types: tuple[str, ...]  # PostgreSQL type names, for the driver
    kinds: tuple[frozenset[type], ...]  # the exact Python types a value of each column may have
    aware: tuple[int, ...]  # timestamptz columns: their datetimes must carry an offset
    json: tuple[tuple[int, type[Json] | type[Jsonb]], ...]  # JSON columns, and the wrapper for their text


# PostgreSQL type (as SQLAlchemy spells it, length aside) → the driver's name and the Python type.
_BINARY_KINDS: dict[str, tuple[str, type]] = {
    "VARCHAR": ("varchar", str),
    "TEXT": ("text", str),
    "INTEGER": ("int4", int),
    "BIGINT": ("int8", int),
    "SMALLINT": ("int2", int),
    "BOOLEAN": ("bool", bool),
    "DATE": ("date", dt.date),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", dt.datetime),
    "JSON": ("json", str),
    "JSONB": ("jsonb", str),
}
# A JSON value comes as the serialised text (SQLAlchemy's JSON) or in the driver's wrapper (JSONB).
_JSON_KINDS: frozenset[type] = frozenset({str, Json, Jsonb, type(None)})


def _binary_copy(dialect: Dialect, table: Table, names: tuple[str, ...]) -> _BinaryCopy | None:
    found = [_BINARY_KINDS.get(table.c[name].type.compile(dialect=dialect).split("(")[0]) for name in names]
    if any(kind is None for kind in found):
        return None
    known = [kind for kind in found if kind is not None]
    return _BinaryCopy(
        types=tuple(name for name, _ in known),
        kinds=tuple(
            _JSON_KINDS if name in ("json", "jsonb") else frozenset[type]({python, type(None)})
            for name, python in known
        ),
        aware=tuple(i for i, (name, _) in enumerate(known) if name == "timestamptz"),
        json=tuple(
            (i, Jsonb if name == "jsonb" else Json)
            for i, (name, _) in enumerate(known)
            if name in ("json", "jsonb")
        ),
    )


def _same(text: str) -> str:
    return text


def _binary_rows(copy: _BinaryCopy, values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]] | None:
    """``values`` ready for a binary COPY, or None when one of them is not of its column's kind."""
    columns = list(zip(*values, strict=True))
    for column, kind in zip(columns, copy.kinds, strict=True):
        if not {type(value) for value in column} <= kind:
            return None
    for index in copy.aware:
        if any(value is not None and value.tzinfo is None for value in columns[index]):
            return None
    for index, wrapper in copy.json:
        columns[index] = tuple(
            wrapper(value, _same) if type(value) is str else value for value in columns[index]
        )
    return list(zip(*columns, strict=True))


@dataclass(frozen=True)
class _InsertPlan:
    sql: str
    names: tuple[str, ...]
    convert: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # a row dictionary → driver values
    recordset_sql: str | None = None  # PostgreSQL, ON CONFLICT, no JSON column: one statement for all
    binary: _BinaryCopy | None = None  # PostgreSQL plain inserts: the binary COPY, when every column has one


def insert_many(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] = (),
    increment: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (all with the same keys) in one round of the driver.

    With ``conflict`` (the unique columns), a row whose key exists adds its ``increment`` columns to
    the stored ones and overwrites the ``replace`` columns; with neither, it is skipped.
    """
    if not rows:
        return
    names = tuple(rows[0])
    plan = _insert_plan(connection.dialect, table, names, tuple(conflict), tuple(increment), tuple(replace))
    if plan.recordset_sql is not None and _distinct_keys(rows, conflict):
        # One statement over the rows as JSON; a key twice in it cannot be updated twice, hence the check.
        try:
            document = orjson.dumps(rows).decode()
        except TypeError:  # a value JSON cannot carry as it is: the rows one by one
            pass
        else:
            connection.exec_driver_sql(plan.recordset_sql, (document,))
            return
    convert = plan.convert
    values = [convert(row) for row in rows]
    if connection.dialect.name == "postgresql" and not conflict:
        # COPY: one stream instead of a statement per row (executemany), in the same transaction.
        # Binary when every value is of its column's kind: the driver then writes values without
        # formatting and escaping them as text (27 → 8–11 µs of client CPU a hub record).
        columns = ", ".join(_q(name) for name in names)
        binary = _binary_rows(plan.binary, values) if plan.binary is not None else None
        statement = f"COPY {_q(table.name)} ({columns}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor, cursor.copy(statement) as copy:
                if binary is not None and plan.binary is not None:
                    copy.set_types(list(plan.binary.types))
                    values = binary
                for row in values:
                    copy.write_row(row)
        except connection.dialect.loaded_dbapi.IntegrityError as exc:
            # As SQLAlchemy reports it for its own statements, so callers catch one exception.
            raise IntegrityError(statement, None, exc) from exc
        return
    connection.exec_driver_sql(plan.sql, values)


def _distinct_keys(rows: Sequence[Mapping[str, Any]], conflict: Sequence[str]) -> bool:
    return len({tuple(row[name] for name in conflict) for row in rows}) == len(rows)


@cache
def _insert_plan(
    dialect: Dialect,
    table: Table,
    names: tuple[str, ...],
    conflict: tuple[str, ...],
    increment: tuple[str, ...],
    replace: tuple[str, ...],
) -> _InsertPlan:
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    into = f"INSERT INTO {_q(table.name)} ({', '.join(_q(name) for name in names)}) "
    marks = ["CAST(? AS TEXT)" if _utf8_json_column(dialect, table.c[name].type) else mark for name in names]
    sql = into + f"VALUES ({', '.join(marks)})"
    recordset_sql = None
    if conflict:
        changes = [f"{_q(name)} = {_q(table.name)}.{_q(name)} + excluded.{_q(name)}" for name in increment]
        changes += [f"{_q(name)} = excluded.{_q(name)}" for name in replace]
        action = f"DO UPDATE SET {', '.join(changes)}" if changes else "DO NOTHING"
        on_conflict = f" ON CONFLICT ({', '.join(_q(name) for name in conflict)}) {action}"
        sql += on_conflict
        types = [table.c[name].type for name in names]
        if dialect.name == "postgresql" and not any(isinstance(t, JSON) for t in types):
            fields = ", ".join(
                f"{_q(n)} {t.compile(dialect=dialect)}" for n, t in zip(names, types, strict=True)
            )
            recordset_sql = into + f"SELECT * FROM json_to_recordset(%s::json) AS x({fields})" + on_conflict
    binary = _binary_copy(dialect, table, names) if dialect.name == "postgresql" and not conflict else None
    return _InsertPlan(sql, names, _converter(dialect, table, names), recordset_sql, binary)


def _converter(
    dialect: Dialect, table: Table, names: tuple[str, ...]
) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """One generated function per table and column list: a tuple of the values as the column
    types bind them (JSON serialised, dates formatted on SQLite), without a loop per value."""
    namespace: dict[str, Any] = {}
    items = []
    for index, name in enumerate(names):
        column_type = table.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is None:
            items.append(f"row[{name!r}]")
        else:
            bind: Callable[[Any], Any] = process
            if isinstance(column_type, DateTime):
                bind = _last_one(_sqlite_datetime(bind) if dialect.name == "sqlite" else bind)
            elif _utf8_json_column(dialect, column_type):
                bind = _utf8_json(bind)
            namespace[f"p{index}"] = bind
            items.append(f"p{index}(row[{name!r}])")
    source = f"def convert(row):\n    return ({', '.join(items)},)\n"
    exec(compile(source, f"<insert {table.name}>", "exec"), namespace)  # names come from the schema
    convert: Callable[[Mapping[str, Any]], tuple[Any, ...]] = namespace["convert"]
    return convert


def _utf8_json_column(dialect: Dialect, column_type: Any) -> bool:
    """A JSON column on SQLite: its documents are bound as UTF-8 bytes, stored as text by a CAST."""
    return dialect.name == "sqlite" and isinstance(column_type, JSON)


def _utf8_json(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` (the column's JSON serialiser), but a dict or list as the same text in UTF-8 bytes,
    and a :class:`JsonText` as the bytes it holds."""

    def bind(value: Any) -> Any:
        if type(value) is JsonText:
            return value.utf8
        if type(value) is dict or type(value) is list:
            encoded = compact_json_utf8(value)
            if encoded is not None:
                return encoded
        return process(value)

    return bind


def _sqlite_datetime(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` (SQLAlchemy's DATETIME binding on SQLite), but a ``datetime`` written by ``isoformat``
    (in C) as the same text: the fields, any offset cut off. A column with a storage format of its own
    keeps SQLAlchemy's."""
    if process(dt.datetime(1, 2, 3, 4, 5, 6, 7)) != "0001-02-03 04:05:06.000007":
        return process  # a storage format of its own: SQLAlchemy formats it

    def bind(value: Any) -> Any:
        if type(value) is dt.datetime:
            return value.isoformat(" ", "microseconds")[:26]
        return process(value)

    return bind


def _last_one(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` remembering its last value: the rows of one call share their times (the moment
    of intake or of the verdict), and formatting a timestamp is the dearest bind processing on SQLite."""
    last: tuple[Any, Any] = (object(), None)  # one tuple, swapped whole: safe across threads

    def remembered(value: Any) -> Any:
        nonlocal last
        seen = last
        if seen[0] is value:
            return seen[1]
        result = process(value)
        last = (value, result)
        return result

    return remembered
