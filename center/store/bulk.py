"""Many rows in one statement on PostgreSQL: `INSERT … SELECT FROM unnest(arrays)`.

Ingest writes a message's records and the timeline entries they make in bulk. Through
SQLAlchemy's executemany, PostgreSQL gets either one statement per row (psycopg's
pipeline: parse, plan and execute per row on the server) or a multi-row `VALUES` list
whose text, 14 × N placeholders long, psycopg re-parses on every call and the server
re-plans: either way most of ingest's CPU. Here the statement text is short and fixed
(psycopg parses it once, the server prepares it after a few uses) and each column travels
as one array parameter in binary (`%b`: text-format arrays of JSON bodies cost several
times the client CPU in quoting, and the server's parsing of them). `WITH ORDINALITY …
ORDER BY` keeps the rows' order, so serial ids follow the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    CursorResult,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
)
from sqlalchemy.types import TypeEngine


def columns_of(table: Table) -> list[str]:
    """The columns a bulk insert fills: all but a serial primary key."""
    return [c.name for c in table.columns if c is not table.autoincrement_column]


@cache
def unnest_insert_sql(table: Table, tail: str = "", constant: frozenset[str] = frozenset()) -> str:
    """`INSERT INTO table (cols) SELECT … FROM unnest(%b::type[], …) … tail`; `tail` is
    an ON CONFLICT and/or RETURNING clause. The `constant` columns, the same in every
    row, are one scalar parameter each instead of an array (dumping an array costs the
    client per element)."""
    names = columns_of(table)
    varying = [n for n in names if n not in constant]
    arrays = ", ".join(f"%b::{_array_type(table, n)}" for n in varying)
    aliases = ", ".join(f"c{i}" for i in range(len(varying)))
    picked = ", ".join(
        f"%b::{_array_type(table, n)[:-2]}" if n in constant else f"u.c{varying.index(n)}"
        for n in names
    )
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {picked} FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, n) "
        f"ORDER BY u.n {tail}"
    ).rstrip()


_ARRAY_TYPES: list[tuple[type[TypeEngine[Any]], str]] = [
    # text[], not varchar(n)[]: an explicit cast to varchar(n) truncates silently, while
    # the insert's assignment cast refuses an over-long value, as a plain insert does.
    (String, "text[]"),
    (BigInteger, "bigint[]"),
    (Integer, "integer[]"),
    (Boolean, "boolean[]"),
    (DateTime, "timestamptz[]"),
    (Float, "double precision[]"),
    (LargeBinary, "bytea[]"),
]


def _array_type(table: Table, name: str) -> str:
    column_type = table.c[name].type
    for kind, array in _ARRAY_TYPES:  # BigInteger before Integer: it is a subclass
        if isinstance(column_type, kind):
            return array
    raise TypeError(f"{table.name}.{name}: no array type for {column_type!r}")


def unnest_insert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], tail: str = ""
) -> CursorResult[Any]:
    """Insert `rows` (dicts with every column of `columns_of(table)`) in one PostgreSQL
    statement."""
    return conn.exec_driver_sql(*unnest_statement(table, rows, tail))


def unnest_statement(
    table: Table, rows: Sequence[dict[str, Any]], tail: str = ""
) -> tuple[str, tuple[Any, ...]]:
    """The SQL text and parameters of `unnest_insert`, for the driver's own cursor."""
    columns = {name: [row[name] for row in rows] for name in columns_of(table)}
    constant = frozenset(n for n, values in list(columns.items())[1:] if _same(values))
    # In the order of the statement's text: the scalars (in the select list), the arrays.
    scalars = [values[0] for n, values in columns.items() if n in constant]
    arrays = [values for n, values in columns.items() if n not in constant]
    return unnest_insert_sql(table, tail, constant), (*scalars, *arrays)


def _same(values: list[Any]) -> bool:
    """Every value is the first one, of its very type (so the scalar stores what each
    row would have): text, integers, booleans, times and None; never floats (-0.0)."""
    first = values[0]
    kind = type(first)
    if kind not in _FOLDED:
        return False
    return all(v is first or (type(v) is kind and v == first) for v in values)


_FOLDED = frozenset({str, int, bool, datetime, type(None)})


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` in one statement on PostgreSQL, by executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        unnest_insert(conn, table, rows)
    else:
        conn.execute(table.insert(), list(rows))
