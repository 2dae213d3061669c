"""``--busy``: two ``yes > /dev/null`` beside the run, as the issue's busy-machine figures.

Started in their own process group and killed on exit, also on Ctrl-C or failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

HOGS = 2


@contextmanager
def cpu_hogs(count: int = HOGS) -> Iterator[list[int]]:
    """Run ``count`` ``yes`` processes writing to /dev/null for the ``with`` body."""
    procs = [
        subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        for _ in range(count)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
