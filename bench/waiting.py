"""Wait on conditions read from the database, with deadlines and stall detection.

Correctness never rests on a fixed sleep: we poll what the database says until it holds,
the deadline passes, or nothing has moved for ``stall_s`` (a broker that stopped making
progress, such as the stock one with an exhausted lock table).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class WaitTimeout(RuntimeError):
    """A condition did not hold before its deadline."""


#: Set on Ctrl-C: every wait (also in the orphan scenario's threads) gives up at once.
CANCELLED = threading.Event()


def wait_for(
    check: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = ""
) -> float:
    """Poll ``check`` until true; return the time (epoch s) it was first seen true."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.time()
        if CANCELLED.is_set() or time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what or check}")
        time.sleep(interval)


@dataclass
class DrainOutcome:
    """How a drain ended: all done, or stopped by the deadline, a stall or a cap."""

    total: int
    done: int
    started: float  # epoch s the clock started
    ended: float  # epoch s the last progress was seen
    status: str  # "ok" | "deadline" | "stalled" | "capped"

    @property
    def elapsed(self) -> float:
        return max(self.ended - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed

    def describe(self) -> str:
        if self.status == "ok":
            return ""
        why = {
            "deadline": f"time cap {self.elapsed:.0f}s",
            "stalled": "no progress",
            "capped": "lock-table cap",
        }[self.status]
        return f"{self.status} after {self.done:,} of {self.total:,} ({why})"


def wait_drained(
    remaining: Callable[[], int],
    *,
    total: int,
    started: float,
    deadline_s: float,
    stall_s: float = 20.0,
    stop_at_done: int | None = None,
) -> DrainOutcome:
    """Poll ``remaining()`` until zero, with a deadline and stall detection.

    Polls often when little is left (so the end time is precise) and every half second
    while a large backlog remains (so the polling itself does not load the server).
    ``stop_at_done`` ends early once that many are done (used to keep the stock broker
    below the size of the server's lock table).
    """
    last_left = None
    last_move = time.time()
    ended = started
    while True:
        left = remaining()
        now = time.time()
        if left != last_left:
            if last_left is not None:
                ended = now
            last_left, last_move = left, now
        done = total - left
        if left <= 0:
            return DrainOutcome(total, total, started, now, "ok")
        if stop_at_done is not None and done >= stop_at_done:
            return DrainOutcome(total, done, started, now, "capped")
        if now - last_move > stall_s:
            return DrainOutcome(total, done, started, ended, "stalled")
        if now - started > deadline_s or CANCELLED.is_set():
            return DrainOutcome(total, done, started, now, "deadline")
        time.sleep(0.02 if left < 200 else 0.1 if left < 5_000 else 0.5)
