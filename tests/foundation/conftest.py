"""Fixtures of the foundation tests: the probe tables the test actors write to."""

from __future__ import annotations

import pytest

from tests.foundation.actors import RUNS_DDL
from tests.support import TestDB


@pytest.fixture
def probes(db: TestDB) -> TestDB:
    """``db`` with ``foundation_runs`` / ``foundation_marks`` (test tables, no tenant data)."""
    with db.owner() as conn:
        conn.execute(RUNS_DDL)
    return db
