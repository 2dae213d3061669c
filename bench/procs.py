"""Worker processes: start them in their own process group, measure their memory, kill them.

Each worker command runs in a new session so one ``killpg`` reaches the master and every
child it forked (dramatiq's worker processes, Prometheus' exposition server) and nothing
else. Every group started is remembered, so a failure or Ctrl-C still kills them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"

_live: list[Worker] = []
_lock = threading.Lock()


def venv_tool(name: str) -> str:
    """``.venv/bin/<name>`` when it exists, else ``name`` (found on PATH)."""
    path = VENV_BIN / name
    return str(path) if path.exists() else name


@dataclass
class Worker:
    """One started command (a process group) and where its output goes."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    killed_at: float | None = None

    def start(self) -> Worker:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            list(self.argv),
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        with _lock:
            _live.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
        """Send ``sig`` to the whole group and reap the leader."""
        if self.proc is None:
            return
        self.killed_at = self.killed_at or time.time()
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=wait)
        # Children in the group may outlive the leader for a moment; make sure they go.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        with _lock:
            if self in _live:
                _live.remove(self)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def kill_all() -> None:
    """Kill every worker group this process started (cleanup on failure or Ctrl-C)."""
    with _lock:
        workers = list(_live)
    for worker in workers:
        worker.kill()


# --- memory -----------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children = _children_map()
    out, stack = [], [pid]
    while stack:
        cur = stack.pop()
        out.append(cur)
        stack.extend(children.get(cur, ()))
    return out


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pids: Sequence[int]) -> float:
    """Summed VmRSS of the given process groups' leaders and every descendant, in MiB."""
    total = 0
    for pid in pids:
        total += sum(rss_kib(p) for p in tree(pid))
    return total / 1024


@dataclass
class RssSampler:
    """Samples the summed RSS of some worker trees in the background; keeps the peak."""

    workers: Sequence[Worker]
    interval: float = 0.25
    peak_mib: float = 0.0
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> float:
        value = tree_rss_mib([w.pid for w in self.workers if w.alive()])
        self.samples.append(value)
        self.peak_mib = max(self.peak_mib, value)
        return value

    def __enter__(self) -> RssSampler:
        def run() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self.sample()
        self._thread = threading.Thread(target=run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
