"""Alembic environment: runs migrations as the owner (DATABASE_URL or the embedded default).

Runs pgjobs' migrations and those of the user packages listed in ``JOBS_MIGRATIONS`` (see
``app.db.migrations``): each user package is a branch of its own, so migrate with
``alembic upgrade heads``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from app.config import get_settings
from app.db.engine import sqlalchemy_url
from app.db.migrations import use_extra_locations
from app.db.models import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Before any revision is read: the user's version directories join ours.
use_extra_locations(context.script)


def run_migrations_online() -> None:
    # DDL and the advisory lock Alembic's transaction takes need a session of their own.
    settings = get_settings()
    url = config.attributes.get("url") or settings.database_direct_url or settings.database_url
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run against a database")
run_migrations_online()
