"""The issue's targets (issue 14), checked against one run's figures.

Each target names the figures it reads by tag (``Figure.tag``) and says "met", "missed" or
"n/a" (a figure missing: scenario not run, system not installed, feature absent), with the
value that decided it, so the table under ``make bench`` tells where each target stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.results import Figure, Results

OURS = "ours"
PEER = "pgqueuer"


@dataclass
class Verdict:
    target: str
    value: str
    status: str  # "met" | "missed" | "n/a"


def _find(results: Results, tag: str, system: str) -> Figure | None:
    for fig in results.figures:
        if fig.tag == tag and fig.system == system and fig.median is not None:
            return fig
    return None


def _ratio(results: Results, tag: str, peer: str = PEER) -> float | None:
    ours, other = _find(results, tag, OURS), _find(results, tag, peer)
    if ours and other and other.median:
        return (ours.median or 0) / other.median
    return None


def _verdict(name: str, checks: list[tuple[str, float | None, Callable[[float], bool]]]) -> Verdict:
    parts, met = [], True
    for label, value, ok in checks:
        if value is None:
            return Verdict(name, f"{label}: n/a", "n/a")
        parts.append(f"{label} {value:,.2f}")
        met = met and ok(value)
    return Verdict(name, "; ".join(parts), "met" if met else "missed")


def check(results: Results) -> list[Verdict]:
    out = []
    out.append(_verdict("1. no-op drain >= 1.5x PgQueuer (1 proc, 2 proc, 40k backlog)", [
        ("1 proc", _ratio(results, "drain_noop_1"), lambda v: v >= 1.5),
        ("2 proc", _ratio(results, "drain_noop_2"), lambda v: v >= 1.5),
        ("backlog", _ratio(results, "backlog_rate"), lambda v: v >= 1.5),
    ]))
    writes = []
    for fig in results.figures:
        if fig.system == OURS and fig.tag.startswith("write_ours_"):
            clients = fig.tag.rsplit("_", 1)[1]
            ref = _find(results, f"write_pgbench_{clients}", "pgbench")
            value = (fig.median / ref.median) if fig.median and ref and ref.median else None
            writes.append((f"{clients} thr/client", value, lambda v: v >= 0.5))
    out.append(_verdict("2. 1-row write jobs >= 0.5x pgbench at the same client count",
                        writes or [("write_jobs", None, lambda v: True)]))
    io = [f for f in results.figures
          if f.tag.startswith("io_") and f.system == OURS and f.values]
    has_async = any(f.tag.startswith("io_async_") for f in io)
    io_checks = []
    for fig in io:
        peer = _find(results, fig.tag.replace("io_async_", "io_"), PEER)
        if fig.tag.startswith("io_async_") == has_async:
            value = (fig.median / peer.median) if fig.median and peer and peer.median else None
            io_checks.append((fig.tag.rsplit("_", 1)[1] + " in flight", value,
                              lambda v: v >= 0.8))
    out.append(_verdict("3. I/O-bound jobs >= 0.8x PgQueuer's asyncio workers",
                        io_checks or [("io_bound", None, lambda v: True)]))
    p50 = _find(results, "latency_p50@500", OURS)
    p99 = _find(results, "latency_p99@500", OURS)
    out.append(_verdict("4. pickup p50 <= 3 ms and p99 <= 10 ms at 500 jobs/s", [
        ("p50 ms", p50.median if p50 else None, lambda v: v <= 3),
        ("p99 ms", p99.median if p99 else None, lambda v: v <= 10),
    ]))
    ratio = _find(results, "table_ratio", OURS)
    full = next((f for f in results.figures if f.tag == "table_full"), None)
    size = full.metric.split(", ", 1)[-1].replace(" (jobs/s)", "") if full else "full"
    out.append(_verdict("5. drain with 1M finished + 100k delayed >= 0.9x empty", [
        (f"{size} / empty", ratio.median if ratio else None, lambda v: v >= 0.9),
    ]))
    for name in ("idle_in_tx", "active_readers"):
        comp = _find(results, f"{name}_completion", OURS)
        p99r = _find(results, f"{name}_p99_ratio", OURS)
        growth = _find(results, f"{name}_buffers_growth", OURS)
        out.append(_verdict(
            f"6. {name}: completion >= 0.98x clean, p99 <= 2x clean, claim buffers bounded", [
                ("completion", comp.median if comp else None, lambda v: v >= 0.98),
                ("p99 x", p99r.median if p99r else None, lambda v: v <= 2),
                ("buffers last/first", growth.median if growth else None, lambda v: v <= 2),
            ]))
    chaos = []
    for fault in ("pg_backend_kill", "postgres_restart", "worker_sigkill"):
        comp = _find(results, f"chaos_{fault}_completion", OURS)
        lost = _find(results, f"chaos_{fault}_lost", OURS)
        dup = _find(results, f"chaos_{fault}_duplicated", OURS)
        chaos += [
            (f"{fault} completion", comp.median if comp else None, lambda v: v >= 1.0),
            ("lost", lost.median if lost else None, lambda v: v == 0),
            ("dup", dup.median if dup else None, lambda v: v == 0),
        ]
    out.append(_verdict("7. chaos: completion 1.0 of clean, 0 lost, 0 duplicated", chaos))
    return out
