"""Leadership: a PostgreSQL session advisory lock held on a dedicated connection.

APScheduler 3 job stores must not be shared by two running schedulers, so only the lock's
holder runs one. The lock lives exactly as long as the connection: when the leader dies,
PostgreSQL drops the connection and frees the lock, and a standby takes it on its next try.
Server-side TCP keepalives bound how long a vanished host (no FIN) keeps the lock.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from app.scheduler import queries

logger = logging.getLogger(__name__)

KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '5', false),"
    " set_config('tcp_keepalives_interval', '2', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)


class LeaderLock:
    def __init__(self, url: str, key: str = "pgjobs.scheduler") -> None:
        self._url = url
        self._key = key
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self._url, autocommit=True, application_name="pgjobs-scheduler-lock",
                    connect_timeout=5,
                )
                self._conn.execute(KEEPALIVES)
            row = self._conn.execute(queries.TRY_LOCK, {"key": self._key}).fetchone()
        except psycopg.Error as exc:
            logger.warning("event=lock_error error=%r", exc)
            self.close()
            return False
        return bool(row and row[0])

    def alive(self) -> bool:
        """Still holding it: the connection answers (a dropped connection lost the lock)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except psycopg.Error as exc:
            logger.error("event=leader_lock_lost error=%r", exc)
            self.close()
            return False

    def release(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute(queries.UNLOCK, {"key": self._key})
            except psycopg.Error:
                pass
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
