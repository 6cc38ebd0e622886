"""Alembic environment: the engine is handed over by recsys.db.upgrade."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from recsys.schema import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    from recsys.db import engine_from_settings
    from recsys.settings import Settings

    engine = engine_from_settings(Settings())

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
