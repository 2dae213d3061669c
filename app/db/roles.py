"""The database roles, and their passwords set without ever sending them in clear.

``ALTER ROLE ... PASSWORD 'secret'`` travels to the server as text and can end up in its
log (``log_statement``) or in ``pg_stat_statements``. libpq computes the SCRAM-SHA-256
verifier on the client instead (``PQencryptPasswordConn``); only the verifier is sent.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

APP_ROLE = "app_user"
ACTOR_ROLE = "app_actor"
WORKER_ROLE = "app_worker"


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Give ``role`` ``password`` as a SCRAM verifier computed here."""
    verifier = conn.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256"
    ).decode()
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(verifier)))
