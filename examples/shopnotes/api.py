"""What application code calls: each in the shop's own transaction (``tenant_session``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from app.db.tenant import tenant_session
from app.jobs import enqueue
from examples.shopnotes.jobs import NoteIn, record


@dataclass(frozen=True)
class Note:
    id: uuid.UUID
    order_ref: str
    body: str
    created_at: datetime


def request_note(tenant_id: uuid.UUID, order_ref: str, body: str) -> str:
    """Enqueue a note for the shop (checked now, stored by a worker); the job's id."""
    payload = NoteIn(order_ref=order_ref, body=body)
    with tenant_session(tenant_id) as session:
        # Enqueued in this transaction: with whatever else the request writes, or not at all.
        return enqueue(session, record, payload.model_dump()).message_id


def list_notes(tenant_id: uuid.UUID) -> list[Note]:
    """The shop's notes, oldest first (RLS shows no other shop's)."""
    with tenant_session(tenant_id) as session:
        rows = session.execute(text(
            "SELECT id, order_ref, body, created_at FROM shopnotes_notes "
            "ORDER BY created_at, id")).all()
    return [Note(*row) for row in rows]
