"""Fixtures of the scheduler tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Path:
    """Scheduler logs, kept under a stable name for reading after a failure."""
    path = Path(tempfile.gettempdir()) / "pgjobs-scheduler-tests" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path
