"""Start and stop the system's processes (workers, scheduler, intake, dashboard): ``make run``,
the demo.

Each process is a real command a deployment would run (``dramatiq app.actors``,
``python -m app.scheduler``, ``python -m app.intake``), so what the demo proves is what
production runs.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    processes: int = 2
    threads: int = 8
    scheduler: bool = True
    #: The HTTP webhook intake (``python -m app.intake``; ``INTAKE_HOST``/``INTAKE_PORT``).
    intake: bool = True
    #: The web dashboard (``python -m app.dashboard``; ``DASHBOARD_HOST``/``DASHBOARD_PORT``).
    dashboard: bool = False
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def commands(self) -> dict[str, Sequence[str]]:
        cmds: dict[str, Sequence[str]] = {
            "workers": [sys.executable, "-m", "dramatiq", "app.actors",
                        "--processes", str(self.processes), "--threads", str(self.threads)],
        }
        if self.scheduler and importlib.util.find_spec("app.scheduler") is not None:
            cmds["scheduler"] = [sys.executable, "-m", "app.scheduler"]
        if self.intake:
            cmds["intake"] = [sys.executable, "-m", "app.intake"]
        if self.dashboard:
            cmds["dashboard"] = [sys.executable, "-m", "app.dashboard"]
        return cmds

    def start(self) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        for name, cmd in self.commands().items():
            out = (open(self.log_dir / f"{name}.log", "ab")
                   if self.log_dir else None)
            # Own process group: Ctrl-C reaches us once, and we stop children in order.
            self.children[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.children.items()}

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every child (graceful: in-flight jobs finish), SIGKILL after ``timeout``."""
        for proc in self.children.values():
            if proc.poll() is None:
                # The main process only: dramatiq forwards it to its workers, and a second
                # SIGTERM would make them exit at once instead of finishing in-flight jobs.
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name, proc in self.children.items():
            try:
                codes[name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait()
        return codes
