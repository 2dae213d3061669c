"""A tenant's Slack installation: its team id, bot user and bot token (sealed at rest).

One workspace per tenant (the plan's rate limits are per workspace = per tenant). Installed
by application code in the tenant's session, read by the assistant's jobs in theirs.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from psycopg.rows import class_row
from sqlalchemy.orm import Session

from app.db.engine import Target, raw_connection
from app.sealing import seal, unseal
from app.services.assistant import queries

TEAM_ID = re.compile(r"[A-Z0-9]{2,64}")


class WorkspaceError(ValueError):
    """An installation request is invalid (the message names the field)."""


class NotInstalled(LookupError):
    """The tenant has no Slack installation: nothing can be posted for it."""


@dataclass(frozen=True)
class Workspace:
    tenant_id: uuid.UUID
    team_id: str
    bot_user_id: str | None
    bot_token: bytes = field(repr=False)

    def token(self) -> str:
        return unseal(self.bot_token)


def install_workspace(
    session: Session, tenant_id: uuid.UUID, *, team_id: str, bot_token: str,
    bot_user_id: str | None = None,
) -> None:
    """Record (or replace) the session's tenant's Slack installation."""
    if not isinstance(team_id, str) or not TEAM_ID.fullmatch(team_id):
        raise WorkspaceError("team_id must be a Slack team id (capital letters and digits)")
    if not isinstance(bot_token, str) or not bot_token.strip():
        raise WorkspaceError("bot_token must not be empty")
    raw_connection(session).execute(queries.INSTALL, {
        "tenant": tenant_id, "team": team_id, "bot_user": bot_user_id,
        "token": seal(bot_token.strip()),
    })


def get_workspace(session: Session) -> Workspace:
    with raw_connection(session).cursor(row_factory=class_row(Workspace)) as cur:
        rows = cur.execute(queries.WORKSPACE).fetchall()
    if len(rows) != 1:
        raise NotInstalled("this tenant has no Slack installation")
    return rows[0]


def tenant_for_team(target: Target, team_id: str) -> uuid.UUID | None:
    """The tenant installed in Slack team ``team_id``, before any tenant is known (the events
    route): one ``SECURITY DEFINER`` function, callable as ``app_user``."""
    row: Any = raw_connection(target).execute(queries.TENANT_FOR_TEAM, {"team": team_id}
                                              ).fetchone()
    return row[0] if row else None
