"""State shared by the scenarios of one run: plan, server, databases, logs, results."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from rich.console import Console

from bench.dbadmin import Databases, connect
from bench.plan import Plan
from bench.procs import Worker
from bench.results import Results
from bench.systems.base import System
from bench.waiting import WaitTimeout, wait_for


@dataclass
class Context:
    plan: Plan
    dbs: Databases
    log_dir: Path
    systems: list[System]
    server: dict[str, str]
    lock_capacity: int
    console: Console
    results: Results = field(default_factory=Results)
    #: Explicitly requested systems take part in every scenario (see ``takes_part``).
    requested: frozenset[str] = frozenset()
    #: Results one scenario measures for another (the MVCC scenarios share a clean run).
    cache: dict[object, object] = field(default_factory=dict)
    _probe: int = -1
    _templates: dict[str, str] = field(default_factory=dict)
    _template_lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, text: str) -> None:
        self.console.log(text)

    def takes_part(self, system: System, scenario: str) -> bool:
        """Whether ``system`` runs in ``scenario`` (all do, unless left out for time)."""
        return (
            system.scenarios is None
            or scenario in system.scenarios
            or system.key in self.requested
        )

    def template(self, system: System) -> str:
        """A database with ``system``'s schema installed, made once per run.

        Each scenario's fresh database is a copy of it (``CREATE DATABASE ... TEMPLATE``),
        which is as clean as a new install and much faster than migrating again.
        """
        with self._template_lock:
            if system.key not in self._templates:
                name = f"bench_{system.key}_template"
                started = time.monotonic()
                system.install(self.dbs.create(name))
                self.log(f"  {system.key}: schema installed in "
                         f"{time.monotonic() - started:.1f}s")
                self._templates[system.key] = name
            return self._templates[system.key]

    @contextmanager
    def database(self, system: System, scenario: str) -> Iterator[str]:
        """A fresh database with ``system``'s schema, dropped afterwards."""
        with self.dbs.fresh(f"bench_{system.key}_{scenario}", self.template(system)) as url:
            yield url

    def start(
        self, system: System, url: str, processes: int, tag: str, *,
        concurrency: int | None = None, extra_env: dict[str, str] | None = None,
    ) -> list[Worker]:
        workers = system.workers(url, processes, self.log_dir, tag, concurrency, extra_env)
        return [w.start() for w in workers]

    def next_probe(self) -> int:
        self._probe -= 1
        return self._probe

    def wait_ready(
        self, system: System, url: str, workers: list[Worker], *, pid_in: list[Worker] | None = None
    ) -> None:
        """Block until a worker has run a probe job (so it is consuming), or fail loudly.

        With ``pid_in``, keep sending probes until one runs inside those workers' process
        trees, which tells that a particular worker group is up when several are.
        """
        from bench.procs import tree

        deadline = time.monotonic() + self.plan.ready_timeout_s
        with system.enqueuer(url) as enq, connect(url) as conn:
            while True:
                probe = self.next_probe()
                enq.one("stamp", probe)

                def ran(probe: int = probe) -> bool:
                    return stamped(conn, probe) is not None

                try:
                    wait_for(
                        ran,
                        timeout=5.0 if pid_in else self.plan.ready_timeout_s,
                        what="a probe job",
                    )
                except WaitTimeout:
                    self._check_alive(workers)
                    if time.monotonic() > deadline:
                        raise
                    continue
                if pid_in is None:
                    return
                pid = stamped(conn, probe)
                if any(pid in tree(w.pid) for w in pid_in):
                    return
                self._check_alive(workers)
                if time.monotonic() > deadline:
                    raise WaitTimeout("probe never reached the expected worker")

    @staticmethod
    def _check_alive(workers: list[Worker]) -> None:
        for w in workers:
            if not w.alive():
                raise RuntimeError(f"worker {w.name} exited; log {w.log_path}:\n{w.tail()}")


def stamped(conn: psycopg.Connection, i: int) -> int | None:
    """The pid that ran stamp job ``i``, or None if it has not run."""
    row = conn.execute("SELECT pid FROM bench_stamp WHERE i = %s", (i,)).fetchone()
    return int(row[0]) if row else None
