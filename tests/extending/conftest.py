"""Fixtures of the extension tests: the example package run with the documented commands.

Everything runs as real processes from the repository root, as a user would run them:
``alembic upgrade heads``, ``python -m app.ops`` (the ``pgjobs`` CLI), ``dramatiq app.actors``
and ``python -m app.scheduler``, each with ``JOBS_MODULES`` and ``JOBS_MIGRATIONS`` naming
the example.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.scheduler import declarations
from tests.support import ROOT, TestDB

LOG_ROOT = Path(tempfile.gettempdir()) / "pgjobs-extending-tests"
BIN = Path(sys.executable).parent

#: The example, as its documentation says to run it; schedulers in fast motion.
SHOPNOTES = {
    "JOBS_MODULES": "examples.shopnotes.jobs",
    "JOBS_MIGRATIONS": "examples.shopnotes.migrations",
    "SCHEDULER_SYNC_SECONDS": "0.5",
    "SCHEDULER_LOCK_RETRY_SECONDS": "0.5",
    # Short leases, no retention pass pruning what the tests inspect.
    "JOBS_LEASE_SECONDS": "3",
    "JOBS_HEARTBEAT_SECONDS": "0.5",
    "JOBS_MAINTENANCE_SECONDS": "3600",
}


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def run(db: TestDB, *argv: str, timeout: float = 120, **env: str) -> Ran:
    """One command to completion, from the repository root, with the example's settings."""
    done = subprocess.run(list(argv), cwd=ROOT, env=db.env(**{**SHOPNOTES, **env}),
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Ran(done.returncode, done.stdout, done.stderr)


def alembic(db: TestDB, *argv: str, **env: str) -> Ran:
    return run(db, str(BIN / "alembic"), *argv, **env)


def pgjobs(db: TestDB, *argv: str, **env: str) -> Ran:
    """The ``pgjobs`` CLI as ``python -m app.ops``, which sees the current directory."""
    return run(db, sys.executable, "-m", "app.ops", *argv, **env)


def start(db: TestDB, log: Path, *argv: str, **env: str) -> subprocess.Popen[bytes]:
    """A long-running process (SIGKILLed at teardown if still running)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), cwd=ROOT, env=db.env(**{**SHOPNOTES, **env}),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    db.procs.append(proc)
    return proc


def start_scheduler(db: TestDB, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return start(db, log, sys.executable, "-m", "app.scheduler", **env)


def start_worker(db: TestDB, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return db.start_worker("app.actors", log=log, **{**SHOPNOTES, **env})


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Path:
    """Process logs, kept under a stable name for reading after a failure."""
    path = LOG_ROOT / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path


@pytest.fixture
def declared() -> Iterator[dict[str, declarations.RecurringTask]]:
    """This process's recurring declarations, restored after the test."""
    saved = dict(declarations.DECLARED)
    yield declarations.DECLARED
    declarations.DECLARED.clear()
    declarations.DECLARED.update(saved)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[
    None, pytest.TestReport, pytest.TestReport
]:
    """A failed test shows the tail of each process log (CI keeps no files)."""
    report = yield
    if report.when == "call" and report.failed:
        for log in sorted((LOG_ROOT / item.name).glob("*.log")):
            report.sections.append((f"log {log.name}", log.read_text()[-6000:]))
    return report
