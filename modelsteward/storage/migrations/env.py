"""Alembic environment: the engine is handed in by modelsteward.storage.db.upgrade()."""

from alembic import context

from modelsteward.storage.models import Base

config = context.config
engine = config.attributes.get("engine")
target_metadata = Base.metadata

if engine is None:  # offline / autogenerate from the command line
    from modelsteward.settings import get_settings
    from modelsteward.storage.db import make_engine

    engine = make_engine(get_settings().db_url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
