"""Order notes and daily summaries: the business logic, on a session it is given.

No dramatiq here: the actors in ``jobs.py`` hand over the job's tenant session, tests and
scripts can hand over any ``tenant_session``. Every statement names the tenant it acts for
and RLS holds it to that tenant anyway: a row of another shop is invisible, and writing one
is an error.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

_ADD = text("""
    INSERT INTO shopnotes_notes (tenant_id, order_ref, body)
    VALUES (:tenant, :order_ref, :body)
    RETURNING id""")
_COUNT = text("""
    SELECT count(*) FROM shopnotes_notes
    WHERE tenant_id = :tenant AND created_at > :since AND created_at <= :until""")
# A slot summarised twice (a retry, a duplicate firing) keeps its first summary.
_SUMMARY = text("""
    INSERT INTO shopnotes_summaries (tenant_id, slot, notes) VALUES (:tenant, :slot, :notes)
    ON CONFLICT (tenant_id, slot) DO NOTHING""")


def add_note(session: Session, tenant: uuid.UUID, order_ref: str, body: str) -> uuid.UUID:
    """Store one note on an order; its id."""
    note_id: uuid.UUID = session.execute(
        _ADD, {"tenant": tenant, "order_ref": order_ref, "body": body}).scalar_one()
    return note_id


def summarize(session: Session, tenant: uuid.UUID, slot: datetime, hours: int) -> int:
    """Record how many notes the shop took in the ``hours`` before ``slot``; that count."""
    notes: int = session.execute(_COUNT, {
        "tenant": tenant, "since": slot - timedelta(hours=hours), "until": slot,
    }).scalar_one()
    session.execute(_SUMMARY, {"tenant": tenant, "slot": slot, "notes": notes})
    return notes
