"""A private PostgreSQL cluster the chaos scenario may restart.

The development server is shared (tests, other runs), so it is never restarted; the
``postgres_restart`` fault runs ``python -m app.devdb`` with ``JOBS_DATA_DIR`` pointing at a
directory of the bench's own: the same machinery and settings as the shared cluster, in
another place, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.procs import REPO

ROLE_ENVS = ("DATABASE_URL", "APP_DATABASE_URL", "WORKER_DATABASE_URL")


class PrivateCluster:
    def __init__(self) -> None:
        base = REPO / ".data"
        base.mkdir(exist_ok=True)
        self.data_dir = Path(tempfile.mkdtemp(prefix="bench-chaos-", dir=base))
        self.url = ""

    def _devdb(self, command: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ROLE_ENVS}
        env["JOBS_DATA_DIR"] = str(self.data_dir)
        done = subprocess.run(
            [sys.executable, "-m", "app.devdb", command], cwd=REPO, env=env,
            capture_output=True, text=True, timeout=180, check=False,
        )
        if done.returncode:
            raise RuntimeError(f"devdb {command} failed: {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    def start(self) -> str:
        """Start (initialising it the first time); return the owner URL of its db."""
        self.url = self._devdb("start")
        return self.url

    def stop(self) -> None:
        """Fast shutdown: every connection is cut, as in a restart or failover."""
        self._devdb("stop")

    def destroy(self) -> None:
        try:
            if (self.data_dir / "pg").exists():
                self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
