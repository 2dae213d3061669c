"""What a notification is about, marked delivered in the sending job's own transaction.

A digest stays ``ready`` until its email is actually sent, then becomes ``sent``; a week's
photo requests likewise. The reference is a closed set of kinds (never a table name from a
payload), each with its own statement, all under the job's tenant RLS.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

_DIGEST = text("UPDATE digests SET status = 'sent' WHERE id = CAST(:ref AS uuid) "
               "AND status = 'ready'")
_PHOTO_WEEK = text("UPDATE photo_requests SET status = 'sent' WHERE week_start = :ref "
                   "AND status = 'ready'")


def digest(digest_id: object) -> str:
    return f"digest:{digest_id}"


def photo_week(week_start: date) -> str:
    return f"photo_week:{week_start.isoformat()}"


def mark_delivered(session: Session, reference: str | None) -> None:
    if not reference:
        return
    kind, _, value = reference.partition(":")
    if kind == "digest":
        session.execute(_DIGEST, {"ref": value})
    elif kind == "photo_week":
        session.execute(_PHOTO_WEEK, {"ref": date.fromisoformat(value)})
    else:
        raise ValueError(f"unknown notification reference kind {kind!r}")
