"""Fixtures of the scheduler tests."""

from __future__ import annotations

import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

LOG_ROOT = Path(tempfile.gettempdir()) / "pgjobs-scheduler-tests"


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Path:
    """Scheduler logs, kept under a stable name for reading after a failure."""
    path = LOG_ROOT / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[
    None, pytest.TestReport, pytest.TestReport
]:
    """A failed scheduler test shows the tail of each scheduler's log (CI keeps no files)."""
    report = yield
    if report.when == "call" and report.failed:
        for log in sorted((LOG_ROOT / item.name).glob("*.log")):
            report.sections.append((f"scheduler log {log.name}", log.read_text()[-6000:]))
    return report
