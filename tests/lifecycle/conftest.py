"""Fixtures of the lifecycle tests: the probe tables the test actors use, workers tuned fast."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest

from app.maintenance.service import Maintenance
from tests.lifecycle.actors import DDL
from tests.support import TestDB


@pytest.fixture
def probes(db: TestDB) -> TestDB:
    """``db`` with ``lifecycle_runs`` / ``lifecycle_gates`` (test tables, no tenant data)."""
    with db.owner() as conn:
        conn.execute(DDL)
    return db


@pytest.fixture
def maintenance(broker: dramatiq.Broker, monkeypatch: pytest.MonkeyPatch) -> Maintenance:
    """The broker's maintenance middleware, ticking every 0.1 s in in-process workers."""
    (found,) = [m for m in broker.middleware if isinstance(m, Maintenance)]
    monkeypatch.setattr(found, "interval", 0.1)
    found.ticked.clear()
    return found


def run_worker(broker: dramatiq.Broker, threads: int = 2) -> Iterator[dramatiq.Worker]:
    w = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    w.start()
    try:
        yield w
    finally:
        w.stop(timeout=10_000)
