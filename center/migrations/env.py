"""Alembic environment. The center runs migrations itself at startup (center.store.db.migrate),
passing its connection in `config.attributes["connection"]`. From a shell:
`alembic -x url=sqlite:///center.sqlite -c /dev/null ...` is not needed; use
`relay-center migrate --config center.toml`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from center.store.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass -x url=DATABASE_URL")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
