"""A sync's place: per (channel, resource), the watermark of the last completed run and,
while a run is under way, the cursor of its next page.

``advance`` runs in the same transaction as the page's records, so what is committed is
always "these records, and the page after them is next": a sync that dies resumes at that
page, and a page's records are never written by two runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row
from sqlalchemy.orm import Session

from app.db.engine import raw_connection
from app.services.commerce import queries


class SyncSuperseded(RuntimeError):
    """The cursor moved on without this attempt (it lost its job to a rescue): stop."""


@dataclass(frozen=True)
class Cursor:
    channel_id: uuid.UUID
    resource: str
    #: Changes after this time are fetched (None: everything).
    run_since: datetime | None
    #: Where the next page starts (None: the first page).
    page_cursor: str | None
    high_water: datetime | None
    run_pages: int
    run_records: int
    #: True when this run continues one that stopped before finishing.
    resumed: bool


def start_or_resume(
    session: Session, tenant_id: uuid.UUID, channel_id: uuid.UUID, resource: str, *,
    full: bool = False,
) -> Cursor:
    conn = raw_connection(session)
    params = {"tenant": tenant_id, "channel": channel_id, "resource": resource, "full": full}
    conn.execute(queries.ENSURE_CURSOR, params)
    with conn.cursor(row_factory=class_row(Cursor)) as cur:
        cursor = cur.execute(queries.START_OR_RESUME, params).fetchone()
    assert cursor is not None
    return cursor


def advance(
    session: Session, cursor: Cursor, *, next_cursor: str | None,
    high_water: datetime | None, records: int,
) -> Cursor:
    with raw_connection(session).cursor(row_factory=class_row(Cursor)) as cur:
        moved = cur.execute(queries.ADVANCE, {
            "channel": cursor.channel_id, "resource": cursor.resource, "next": next_cursor,
            "high_water": high_water, "records": records, "pages": cursor.run_pages,
        }).fetchone()
    if moved is None:
        raise SyncSuperseded(f"sync of {cursor.resource} for channel {cursor.channel_id} "
                             f"moved past page {cursor.run_pages} without this attempt")
    return moved


def finish(session: Session, cursor: Cursor) -> datetime | None:
    """Close the run: its high water becomes the next run's watermark."""
    row = raw_connection(session).execute(queries.FINISH, {
        "channel": cursor.channel_id, "resource": cursor.resource, "pages": cursor.run_pages,
    }).fetchone()
    if row is None:
        raise SyncSuperseded(f"sync of {cursor.resource} for channel {cursor.channel_id} "
                             "was finished by another attempt")
    since: datetime | None = row[0]
    return since
