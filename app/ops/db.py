"""The operator's connection: the owner role, which sees every tenant's jobs."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.config import get_settings
from app.db import connections


def connect(url: str | None = None) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit owner connection (workers are judged alive by their own leases)."""
    return connections.connect(url or get_settings().database_url, name="pgjobs-ops",
                               row_factory=dict_row)
