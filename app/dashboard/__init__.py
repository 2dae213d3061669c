"""The web dashboard: queues, jobs, workers, schedules and limits, live, for operators and
tenant admins (``python -m app.dashboard``).

Operators sign in with credentials from ``DASHBOARD_OPERATORS`` and read through the owner's
connection, like the operations CLI; a tenant admin reads only through ``tenant_session`` of
their tenant (``app_user``, RLS), so what they can see is decided by PostgreSQL, not by a
filter here. Every action is confirmed, CSRF-protected and written to ``dashboard.audit``.
"""
