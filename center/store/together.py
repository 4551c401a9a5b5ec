"""Several statements in one round trip to PostgreSQL: writes whose results nobody reads,
then questions, sent together in psycopg's pipeline mode.

Ingest asks PostgreSQL many small things per message; each answer waited for is a round
trip, and on a busy machine each wait is also a wait to be scheduled again. Where the
questions are known together (the sequence rows with the records insert; the conditions,
active tickets and maintenance windows the ticket engine will ask about) they go in one
pipeline, with the writes that must precede them. SQLAlchemy cannot read results inside
a pipeline, so the questions are SQL text run on the driver's cursors, their rows
returned as dicts; the writes go through SQLAlchemy. PostgreSQL only: elsewhere the
callers ask one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row
from sqlalchemy import Connection, Executable

from center.store.db import pipeline

# A statement and its parameters (None, a dict or a list). It must return no rows: an
# insert into a table with a serial key is built `.inline()` (no RETURNING of the id).
Write = tuple[Executable, Any]
Read = tuple[str, Any]  # SQL text and its parameters (%(name)s and a dict, or %b and a tuple)


def run_together(
    conn: Connection, writes: Sequence[Write], reads: Sequence[Read], *, as_dicts: bool = True
) -> list[list[Any]]:
    """Run `writes`, then `reads`, in that order in one round trip; the rows of each read,
    as dicts or (cheaper, for many rows) tuples. An error in any of them is raised (as
    SQLAlchemy's) once all have been sent."""
    if not writes and not reads:
        return []  # an empty pipeline still waits for the server
    driver: Any = conn.connection.driver_connection
    cursors = []
    with pipeline(conn):
        for statement, params in writes:
            conn.execute(statement, params)
        for sql, params in reads:
            cursor = driver.cursor(row_factory=dict_row) if as_dicts else driver.cursor()
            cursor.execute(sql, params)
            cursors.append(cursor)
    out = []
    for cursor in cursors:  # the results arrived with the pipeline's end
        out.append(cursor.fetchall())
        cursor.close()
    return out


def execute_all(conn: Connection, writes: Sequence[Write]) -> None:
    """The writes one by one (any backend)."""
    for statement, params in writes:
        conn.execute(statement, params)
