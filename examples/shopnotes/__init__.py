"""shopnotes: a user package built on pgjobs' public extension surface, outside ``app/``.

Shops (tenants) record notes on their orders in the background, and every evening each shop
gets a summary of its day's notes. What it shows, one file each:

- ``jobs.py``: its queue (``declare_queue``), two actors (``@job``) and a recurring task
  (``recurring``), loaded by workers and the scheduler through ``JOBS_MODULES``;
- ``notes.py``: the business logic, plain SQLAlchemy, no dramatiq;
- ``api.py``: what application code calls, in a tenant's own transaction;
- ``settings.py``: its own settings from the environment;
- ``migrations/``: its tables, under tenant RLS by ``enable_tenant_rls``, in an Alembic
  branch of its own, run with pgjobs' migrations through ``JOBS_MIGRATIONS``.

The README section "Adding your own jobs" walks through it.
"""
