"""The metadata every table belongs to, its naming convention, and the column types the
tables share."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
TS = DateTime(timezone=True)


def record_key() -> list[Column[object]]:
    """The first columns of a table that keeps one row per gateway record: its own id,
    then the record's id (gateway, session, seq) and its site. New columns per table."""
    return [
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("gateway_id", String(64), nullable=False),
        Column("session", BigInteger, nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("site", String(64), nullable=False),
    ]
