"""shopnotes' Alembic versions: ``JOBS_MIGRATIONS=examples.shopnotes.migrations``."""
