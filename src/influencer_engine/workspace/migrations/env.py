"""Alembic's environment for the workspace: run on the connection the store hands in (``config.attributes``), or on
``sqlalchemy.url`` when run from the command line (``alembic -x url=... upgrade head`` with a script location here)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from influencer_engine.workspace.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(str(url))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
