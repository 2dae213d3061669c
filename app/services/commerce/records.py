"""Remote records stored per (channel, resource, external id): upserts, never duplicates."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from app.db.engine import raw_connection
from app.providers.pages import Record
from app.services.commerce import queries


def upsert(
    session: Session, tenant_id: uuid.UUID, channel_id: uuid.UUID, resource: str,
    records: Iterable[Record], *, source: str = "sync",
) -> int:
    """Insert or update ``records``; returns how many rows changed (unchanged ones don't)."""
    latest: dict[str, Record] = {}
    for record in records:  # one row per id: a page may name a record twice
        latest[record.external_id] = record
    if not latest:
        return 0
    rows = raw_connection(session).execute(queries.UPSERT_RECORDS, {
        "tenant": tenant_id, "channel": channel_id, "resource": resource, "source": source,
        "ids": list(latest), "datas": [Jsonb(r.data) for r in latest.values()],
        "times": [r.updated_at for r in latest.values()],
    }).fetchall()
    return len(rows)
