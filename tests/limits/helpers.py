"""What the limits tests compute from the probe rows: overlaps, windows, rates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from tests.limits.actors import PROBE_TABLE
from tests.support import TestDB

#: Worker settings for tests that kill workers or must keep every row: short leases,
#: no retention pass pruning the rows being inspected.
FAST_LEASES = {"JOBS_LEASE_SECONDS": "3", "JOBS_HEARTBEAT_SECONDS": "0.5",
               "JOBS_MAINTENANCE_SECONDS": "3600"}


def install_probe(db: TestDB) -> None:
    with db.owner() as conn:
        conn.execute(PROBE_TABLE)


def max_overlap(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t)."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def max_in_window(times: Sequence[datetime], seconds: float) -> int:
    """The most ``times`` inside any half-open window ``[t, t + seconds)``."""
    ordered = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while (t - ordered[lo]).total_seconds() >= seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
