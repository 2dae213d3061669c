"""What one claim costs, sampled over time: shared buffers per claim call.

Two sources, the first that works:

* ``pg_stat_statements`` (when the server preloads it): every few seconds, the calls and
  shared blocks (hit + read) of the statements matching the system's ``claim_pattern`` in
  the bench database; each sample is the blocks per call over the interval.
* otherwise ``EXPLAIN (ANALYZE, BUFFERS)`` of the system's own claim statement
  (``System.claim_probe``), as the role that claims, in a transaction that is rolled back:
  a claim that finds nothing still walks whatever the index holds, which is exactly the
  cost that grows while vacuum is held back. It holds the rows it finds for a millisecond.

The embedded development server does not preload ``pg_stat_statements`` (it would need a
restart of a cluster others use), so there the EXPLAIN probe is what runs.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.systems.base import System


@dataclass
class BufferSeries:
    source: str = ""  # "pg_stat_statements" | "explain" | "" (none: why in ``problem``)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (s since start, bufs)
    problem: str = ""

    def quarter(self, last: bool) -> float | None:
        """Median of the first or last quarter of the samples (at least one)."""
        if not self.samples:
            return None
        k = max(1, len(self.samples) // 4)
        part = sorted(v for _, v in (self.samples[-k:] if last else self.samples[:k]))
        return part[len(part) // 2]

    def growth(self, floor: float = 10.0) -> float | None:
        """Last quarter over first quarter; ``floor`` keeps a 3 -> 6 buffer wobble at 1."""
        first, last = self.quarter(False), self.quarter(True)
        if first is None or last is None:
            return None
        return max(last, floor) / max(first, floor)

    def describe(self, limit: int = 12) -> str:
        step = max(1, len(self.samples) // limit)
        points = self.samples[::step]
        if self.samples and points[-1] != self.samples[-1]:
            points.append(self.samples[-1])
        return f"{self.source}: " + " ".join(f"{t:.0f}s:{v:,.0f}" for t, v in points)


def statements_available(conn: psycopg.Connection) -> bool:
    """Whether pg_stat_statements can be read in this database (creating it if preloaded)."""
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if not row or "pg_stat_statements" not in str(row[0]):
        return False
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
    except psycopg.Error:
        return False
    return True


class ClaimSampler:
    """Samples the claim's buffers per call every ``interval`` seconds in a thread."""

    def __init__(self, system: System, url: str, interval: float) -> None:
        self.system, self.url, self.interval = system, url, interval
        self.series = BufferSeries()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ClaimSampler:
        self._thread = threading.Thread(target=self._run, name="claim-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as owner:
                if self.system.claim_pattern and statements_available(owner):
                    self.series.source = "pg_stat_statements"
                    self._statements(owner)
                    return
            probe = self.system.claim_probe()
            if probe is None:
                note = self.system.claim_note
                self.series.problem = (f"no claim statement for {self.system.key}"
                                       + (f": {note}" if note else ""))
                return
            self.series.source = "explain"
            self._explain(*probe)
        except Exception as exc:  # a probe failing must not fail the scenario's load
            self.series.problem = f"{type(exc).__name__}: {exc}"[:300]

    def _statements(self, conn: psycopg.Connection) -> None:
        query = (
            "SELECT coalesce(sum(calls), 0), coalesce(sum(shared_blks_hit + shared_blks_read), 0)"
            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
            " WHERE datname = current_database()) AND query ~* %s"
        )
        started = time.monotonic()
        row = conn.execute(query, (self.system.claim_pattern,)).fetchone()
        calls, blocks = (float(row[0]), float(row[1])) if row else (0.0, 0.0)
        while not self._stop.wait(self.interval):
            row = conn.execute(query, (self.system.claim_pattern,)).fetchone()
            now_calls, now_blocks = (float(row[0]), float(row[1])) if row else (calls, blocks)
            if now_calls > calls:
                self.series.samples.append(
                    (time.monotonic() - started, (now_blocks - blocks) / (now_calls - calls)))
            calls, blocks = now_calls, now_blocks

    def _explain(self, statement: str, params: Any) -> None:
        started = time.monotonic()
        with psycopg.connect(self.system.probe_url(self.url)) as conn:
            raw = "$1" in statement
            while True:
                values = params(conn) if callable(params) else params
                cur = psycopg.RawCursor(conn) if raw else conn.cursor()
                cur.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", values)
                row = cur.fetchone()
                conn.rollback()
                doc = row[0] if row else None
                if isinstance(doc, str):
                    doc = json.loads(doc)
                plan = doc[0]["Plan"] if doc else {}
                buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
                self.series.samples.append((time.monotonic() - started, float(buffers)))
                if self._stop.wait(self.interval):
                    return
