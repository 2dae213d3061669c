"""Scheduler health for SQL users and the ops CLI: who leads, last tick, next fire times.

The same facts are in SQL: ``SELECT * FROM scheduler.health`` (one row) and
``SELECT * FROM scheduler.jobs`` (one row per schedule with its next fire time).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.scheduler import queries


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values: datetimes as ISO 8601, UUIDs as strings."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[key] = value
    return out


def scheduler_status(conn: psycopg.Connection[Any], stale_seconds: float = 10.0) -> dict[str, Any]:
    """The scheduler's state as a dict; ``healthy`` is False without a live leader.

    ``conn``: a psycopg connection as the owner (the scheduler schema is system data).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        health = cur.execute(queries.HEALTH).fetchone() or {}
        instances = cur.execute(queries.INSTANCES, {"stale": stale_seconds}).fetchall()
        jobs = cur.execute(queries.JOBS).fetchall()
    leader = next((i for i in instances if i["role"] == "leader" and i["alive"]), None)
    return {
        "healthy": leader is not None,
        "leader": _plain(leader) if leader else None,
        "last_tick_at": _plain(health).get("last_tick_at"),
        "next_fire_at": _plain(health).get("next_fire_at"),
        "standbys": sum(1 for i in instances if i["role"] == "standby" and i["alive"]),
        "instances": [_plain(i) for i in instances],
        "jobs": [_plain(j) for j in jobs],
    }


class Instance:
    """This process's row in ``scheduler.instances`` (heartbeat, role, last error)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.id = uuid.uuid4()
        self._conn = conn
        conn.execute(queries.REGISTER, {"id": self.id, "hostname": socket.gethostname(),
                                        "pid": os.getpid()})

    def heartbeat(self, role: str, *, synced: bool = False, error: str | None = None) -> None:
        self._conn.execute(queries.HEARTBEAT, {"id": self.id, "role": role, "synced": synced,
                                               "error": error})

    def take_over(self) -> None:
        self._conn.execute(queries.TAKE_OVER, {"id": self.id})
        self.heartbeat("leader")

    def unregister(self) -> None:
        self._conn.execute(queries.UNREGISTER, {"id": self.id})
