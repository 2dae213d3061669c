"""The activity feed of one tenant, read under its RLS, in an order that never skips a row.

Rows are ordered by (inserting transaction id, seq) and a reader only takes the rows whose
transaction is older than every transaction still running ("settled"): a row that has not
committed yet can then only appear after the reader's cursor, never before it, so resuming
from the last seen event misses nothing even when transactions commit out of order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from sqlalchemy import Engine

from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.intake import queries


@dataclass(frozen=True)
class Cursor:
    xid: int
    seq: int


@dataclass(frozen=True)
class FeedRow:
    seq: int
    xid: int
    id: uuid.UUID
    event_type: str
    title: str
    description: str | None
    source: str
    source_id: str | None
    created_at: datetime
    settled: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "seq": self.seq, "event_type": self.event_type,
                "title": self.title, "description": self.description, "source": self.source,
                "source_id": self.source_id, "created_at": self.created_at.isoformat()}


def start(engine: Engine, tenant: uuid.UUID, last_event_id: str | None) -> Cursor:
    """Just after ``last_event_id`` if it is one of the tenant's events, else from now."""
    with tenant_session(tenant, engine=engine) as session:
        conn = raw_connection(session)
        if last_event_id and last_event_id.strip().isdigit():
            row = conn.execute(queries.CURSOR_OF, {"seq": int(last_event_id)}).fetchone()
            if row is not None:
                return Cursor(row[0], int(last_event_id))
        row = conn.execute(queries.HORIZON).fetchone()
        assert row is not None
        return Cursor(row[0], 0)


def read(
    engine: Engine, tenant: uuid.UUID, cursor: Cursor, limit: int = 200
) -> tuple[list[FeedRow], bool, bool]:
    """Settled rows after ``cursor``; then whether unsettled rows wait, and whether more do."""
    with tenant_session(tenant, engine=engine) as session:
        cur = raw_connection(session).cursor(row_factory=class_row(FeedRow))
        rows = cur.execute(queries.FEED, {"xid": cursor.xid, "seq": cursor.seq,
                                          "limit": limit}).fetchall()
    settled: list[FeedRow] = []
    for row in rows:
        if not row.settled:
            return settled, True, False
        settled.append(row)
    return settled, False, len(rows) == limit
