"""Fixtures of the fault tests: the effects table and tenants, and a private cluster."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import migrate
from tests.faults.actors import EFFECTS_DDL
from tests.faults.cluster import PrivateCluster
from tests.support import TestDB


@pytest.fixture
def effects(db: TestDB) -> TestDB:
    """``db`` with ``fault_effects`` (created by the owner, under RLS like tenant tables)."""
    with db.owner() as conn:
        conn.execute(EFFECTS_DDL)
    return db


@pytest.fixture
def tenants(effects: TestDB) -> list[uuid.UUID]:
    return [effects.create_tenant(f"tenant-{i}") for i in range(4)]


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this test's own (``app/devdb.py`` with ``JOBS_DATA_DIR``),
    migrated, with the effects table: the test may stop and start it; the shared server
    is never touched. Stopped and deleted afterwards.

    Not under pytest's tmp_path: when run as root, PostgreSQL runs as another OS user that
    must reach its directory, and pytest's directories are private to their owner.
    """
    base = Path(tempfile.mkdtemp(prefix="pgjobs-faults-"))
    base.chmod(0o755)
    cluster = PrivateCluster(base)
    try:
        url = cluster.start()
        migrate(url)
        cluster.db = TestDB(owner_url=url, name="jobs")
        with cluster.db.owner() as conn:
            conn.execute(EFFECTS_DDL)
        yield cluster
    finally:
        if cluster.db is not None:
            cluster.db.stop_all()
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
