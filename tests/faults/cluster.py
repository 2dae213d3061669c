"""A private PostgreSQL cluster that a test may stop and start at will.

The shared development server must never be restarted (other tests and agents use it), so
the restart scenario runs ``python -m app.devdb`` with ``JOBS_DATA_DIR`` pointing at a
directory of the test's own: the same machinery as the shared cluster, in another place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, TestDB


class PrivateCluster:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.db: TestDB | None = None

    def _devdb(self, command: str) -> str:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "APP_DATABASE_URL", "WORKER_DATABASE_URL")}
        env["JOBS_DATA_DIR"] = str(self.data_dir)
        done = subprocess.run(
            [sys.executable, "-m", "app.devdb", command], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, f"devdb {command} failed: {done.stderr}"
        return done.stdout.strip()

    def start(self) -> str:
        """Start (initialising it the first time) and return the owner URL."""
        return self._devdb("start")

    def stop(self) -> None:
        """Fast shutdown: every connection is cut, as in a real restart or failover."""
        if (self.data_dir / "pg").exists():
            self._devdb("stop")
