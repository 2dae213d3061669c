"""What the figures were measured on: CPU, memory, software versions, server settings."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("dramatiq", "dramatiq-pg", "pgqueuer", "procrastinate", "psycopg", "psycopg2-binary",
            "SQLAlchemy")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def describe(
    server: dict[str, str], server_url_redacted: str, load_at_start: tuple[float, ...]
) -> dict[str, Any]:
    return {
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "mem_gib": mem_total_gib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "postgres": server,
        "server_url": server_url_redacted,
    }
