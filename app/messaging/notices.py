"""Notices: messages a service decided to send, before they are enqueued as notifications.

Services (digests, photo requests, review checks) return notices; their actors enqueue them
with ``app.messaging.notify.send_notice`` in the same transaction, each under its unique
key, so a job that runs twice never notifies twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_OWNERS = text("""
    SELECT id, email, phone, name FROM users WHERE is_owner AND active ORDER BY id""")


@dataclass(frozen=True)
class Notice:
    channel: str
    recipient: str
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    unique_key: str | None = None
    reference: str | None = None


def owner_notices(
    session: Session, template: str, params: dict[str, Any], key: str,
    reference: str | None = None,
) -> list[Notice]:
    """One notice per active owner of the tenant: WhatsApp when they have a phone, else email.

    ``key`` identifies the occasion (``reviews.check:<slot>``); each owner's notice is unique
    per (occasion, owner).
    """
    notices = []
    for user_id, email, phone, name in session.execute(_OWNERS):
        channel, recipient = ("whatsapp", phone) if phone else ("email", email)
        notices.append(Notice(channel, recipient, template, {**params, "name": name},
                              unique_key=f"{key}:{user_id}", reference=reference))
    return notices

