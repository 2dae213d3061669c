"""Which worker processes this one can see, so a dead neighbour is found without its lease.

Two processes see each other's PIDs when they share a kernel boot and a PID namespace: the
host key. A PID is reused only by a younger process, so a worker is known by its PID and
its start time. Linux only (``/proc``); elsewhere there is no host key, and a dead worker's
jobs wait for its lease, as they do for a worker on another host.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def host_key() -> str | None:
    """Kernel boot id and PID namespace of this process, or None where unknown."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}/{namespace}"


def _stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time (clock ticks since boot) of ``pid``, None if unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: fields restart after it.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def process_started(pid: int | None = None) -> int | None:
    """Start time of ``pid`` (default: this process) in clock ticks since boot."""
    stat = _stat(os.getpid() if pid is None else pid)
    return stat[1] if stat else None


def is_gone(pid: int, started: int | None) -> bool:
    """True only when ``pid`` (started at ``started``) has certainly exited.

    A process we may not signal or inspect counts as alive: its jobs wait for the lease.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = _stat(pid)
    if stat is None or started is None:
        return False
    state, now_started = stat
    return now_started != started or state in ("Z", "X")  # reused PID, or a zombie
