"""Recurring jobs: ``python -m app.scheduler`` fires each slot once, per active tenant.

APScheduler 3 times the slots (cron triggers, job store in PostgreSQL); one process leads
under a PostgreSQL advisory lock while others stand by; each firing enqueues the task's
actor for every tenant, plus the slot in a ledger, in one transaction, with a unique key per
(task, tenant, slot). See ``service.py`` for the process, ``firing.py`` for a firing.

A task is declared in code next to its actor with ``recurring(task=..., actor=...,
cron=...)`` (``declarations.py``), or as a row of ``scheduler.recurring``.
"""

from app.scheduler.declarations import RecurringDeclarationError, RecurringTask, recurring

__all__ = ["RecurringDeclarationError", "RecurringTask", "recurring"]
