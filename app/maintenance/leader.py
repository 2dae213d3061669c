"""Leadership: one leader per (database, name), by a PostgreSQL session advisory lock.

The lock lives exactly as long as the session that took it: when the leader's process
dies, PostgreSQL drops its connection and frees the lock, and another process takes it on
its next attempt (within its attempt interval). Session state cannot survive a transaction
pooler, so the session must be a direct connection (workers use their claim connection;
the scheduler a connection of its own). This is the only leader election in the project:
the workers' maintenance (rescue, retention, gauges) and the scheduler both use it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from app.db.connections import connect

logger = logging.getLogger(__name__)

TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext(%(name)s))"
# The server notices a vanished client host (no FIN) within about 11 s and frees the lock.
SERVER_KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '5', false),"
    " set_config('tcp_keepalives_interval', '2', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)
UNLOCK = "SELECT pg_advisory_unlock(hashtext(%(name)s))"
ALIVE = "SELECT 1"

Session = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


class Leadership:
    """``attempt()`` takes or confirms the lead; ``is_leader`` says what the last one found.

    ``session`` lends the connection the lock lives on; ``generation`` changes whenever
    that connection is replaced (a new session holds no lock).
    """

    def __init__(self, name: str, session: Session, generation: Callable[[], int]) -> None:
        self.name = name
        self._session = session
        self._generation = generation
        self._held_on: int | None = None

    @property
    def is_leader(self) -> bool:
        return self._held_on is not None

    def attempt(self) -> bool:
        try:
            with self._session() as conn:
                if self._held_on is not None and self._held_on == self._generation():
                    conn.execute(ALIVE)  # a dropped connection lost the lock: find out now
                    return True
                if self._held_on is not None:
                    logger.error("event=leadership_lost name=%s reason=session_replaced",
                                 self.name)
                    self._held_on = None
                row = conn.execute(TRY_LOCK, {"name": self.name}).fetchone()
                if row and row[0]:
                    self._held_on = self._generation()
                    logger.info("event=leadership_taken name=%s", self.name)
                return self._held_on is not None
        except psycopg.Error as exc:
            if self._held_on is not None:
                logger.error("event=leadership_lost name=%s error=%r", self.name, exc)
            self._held_on = None
            return False

    def resign(self) -> None:
        if self._held_on is None:
            return
        self._held_on = None
        with contextlib.suppress(psycopg.Error), self._session() as conn:
            conn.execute(UNLOCK, {"name": self.name})
        logger.info("event=leadership_released name=%s", self.name)


class DedicatedSession:
    """A connection of its own for a leader lock (the scheduler's), reopened when lost."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._conn: psycopg.Connection[Any] | None = None
        self.generation = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[psycopg.Connection[Any]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self._url, name=self._name)
            self._conn.execute(SERVER_KEEPALIVES)
            self.generation += 1
        try:
            yield self._conn
        except psycopg.Error:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
