"""The operator's connection: the owner role, which sees every tenant's jobs."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.config import get_settings
from app.ops import queries


def connect(url: str | None = None) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit owner connection; the views judge worker liveness by our lease."""
    settings = get_settings()
    conn = psycopg.connect(
        url or settings.database_url, autocommit=True, row_factory=dict_row,
        connect_timeout=5, application_name="pgjobs-ops",
    )
    conn.execute(queries.SET_LEASE, {"lease": str(settings.lease_seconds)})
    return conn
