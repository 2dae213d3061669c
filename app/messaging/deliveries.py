"""The delivery ledger's state machine: the only module that changes ``deliveries`` rows.

One row per idempotency key (the id of the job that sends it, stable across its attempts)::

    (new) -> sending -> sent
                     -> retrying -> sending ...     certainly not sent, sent on the next try
                     -> failed                      refused for good (dead letter)
                     -> unknown                     may have been sent; never resent blindly

``begin`` runs in a transaction that commits before the provider is called
(``separate_session``), so an attempt that dies mid-call leaves ``sending`` behind and the
next attempt knows it must reconcile instead of sending again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.messaging import queries


@dataclass(frozen=True)
class Attempt:
    """A delivery as an attempt found it, before this attempt changed anything."""

    delivery_id: uuid.UUID
    #: None for a new delivery; else what the previous attempt left.
    previous: str | None
    attempts: int
    provider_message_id: str | None


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    idempotency_key: str
    job_id: uuid.UUID | None
    channel: str
    recipient: str
    template: str
    provider: str | None
    provider_message_id: str | None
    status: str
    attempts: int
    error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Target:
    """What a delivery is: where it goes and with which template."""

    channel: str
    recipient: str
    template: str


def begin(
    session: Session, key: str, job_id: uuid.UUID | None, target: Target, provider: str
) -> Attempt:
    """Record this attempt (commit it before calling the provider)."""
    params = {"key": key, "job": job_id, "channel": target.channel,
              "recipient": target.recipient, "template": target.template, "provider": provider}
    row = session.execute(queries.INSERT_DELIVERY, params).mappings().one_or_none()
    if row is not None:
        return Attempt(row["id"], None, row["attempts"], None)
    row = session.execute(queries.LOCK_DELIVERY, {"key": key}).mappings().one()
    session.execute(queries.RESUME_DELIVERY,
                    {"id": row["id"], "job": job_id, "provider": provider})
    return Attempt(row["id"], row["status"], row["attempts"] + 1, row["provider_message_id"])


def sent(session: Session, delivery_id: uuid.UUID, provider: str, provider_message_id: str,
         note: str | None = None) -> None:
    session.execute(queries.MARK_SENT, {"id": delivery_id, "provider": provider,
                                        "provider_message_id": provider_message_id,
                                        "note": note})


def retrying(session: Session, delivery_id: uuid.UUID, error: str) -> None:
    """The attempt failed and certainly sent nothing: the next one sends."""
    session.execute(queries.MARK_STATUS, {"id": delivery_id, "status": "retrying",
                                          "error": error})


def unsure(session: Session, delivery_id: uuid.UUID, error: str) -> None:
    """The attempt failed after the provider may have accepted: stays ``sending``."""
    session.execute(queries.NOTE_ERROR, {"id": delivery_id, "error": error})


def failed(session: Session, delivery_id: uuid.UUID, error: str) -> None:
    session.execute(queries.MARK_STATUS, {"id": delivery_id, "status": "failed",
                                          "error": error})


def unknown(session: Session, delivery_id: uuid.UUID, error: str) -> None:
    session.execute(queries.MARK_STATUS, {"id": delivery_id, "status": "unknown",
                                          "error": error})


def record_failure(
    session: Session, key: str, job_id: uuid.UUID | None, target: Target, error: str,
    *, final: bool,
) -> None:
    """After a failed attempt: keep the error; on the last one settle the status."""
    session.execute(queries.RECORD_FAILURE, {
        "key": key, "job": job_id, "channel": target.channel, "recipient": target.recipient,
        "template": target.template, "error": error, "final": final,
    })


def resolve_unknown(session: Session, delivery_id: uuid.UUID | str, *, sent: bool) -> bool:
    """Settle an ``unknown`` delivery after checking with the recipient or the provider.

    ``sent=True`` marks it sent; ``sent=False`` marks it ``retrying``, so running its dead
    job again (``pgjobs retry JOB``) sends it. False when it was not ``unknown``.
    """
    row = session.execute(queries.RESOLVE_UNKNOWN,
                          {"id": uuid.UUID(str(delivery_id)), "sent": sent}).first()
    return row is not None


def get(session: Session, delivery_id: uuid.UUID | str) -> Delivery | None:
    row = session.execute(queries.GET_DELIVERY,
                          {"id": uuid.UUID(str(delivery_id))}).mappings().one_or_none()
    return Delivery(**row) if row is not None else None


def of_job(session: Session, job_id: uuid.UUID | str) -> Delivery | None:
    row = session.execute(queries.DELIVERY_OF_JOB,
                          {"job": uuid.UUID(str(job_id))}).mappings().one_or_none()
    return Delivery(**row) if row is not None else None
