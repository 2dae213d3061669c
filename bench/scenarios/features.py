"""Scenario 8: what limits and fairness cost our broker's drain, against no limits.

One worker process (8 threads) drains the same no-op jobs on three queues of
``tests/limits/actors.py``: no limits; ``fair=True`` over 10 keys; per-key rate and
concurrency limits over 10 keys, set high enough never to bind (the cost of checking them).
Repeats are interleaved, so a noisy neighbour hits every variant alike. The drain is timed
from the first start to the last completion, read from the job rows
(``tests.limits.throughput.measure``).
"""

from __future__ import annotations

import os

from bench.context import Context
from bench.results import Figure

SCENARIO = "features"
SYSTEM = "ours"
VARIANTS = (
    ("none", "no-op drain, no limits (jobs/s)"),
    ("fair-10", "no-op drain, fair over 10 keys (jobs/s)"),
    ("limits-10", "no-op drain, per-key rate+concurrency, 10 keys (jobs/s)"),
)


def run(ctx: Context) -> None:
    from tests.limits.throughput import measure

    figs = {
        name: ctx.results.add(Figure(SCENARIO, metric, SYSTEM, "jobs/s", True))
        for name, metric in VARIANTS
    }
    saved = os.environ.get("DATABASE_URL")
    try:
        for _ in range(ctx.plan.repeats):
            for name, fig in figs.items():
                fig.values.append(measure(name, ctx.plan.feature_jobs))
    finally:
        if saved is not None:
            os.environ["DATABASE_URL"] = saved
    base = figs["none"].median
    for name, fig in figs.items():
        if name != "none" and base and fig.median:
            fig.note = f"{fig.median / base:.2f}x no limits"
    ctx.log(
        "  features: " + ", ".join(f"{n} {f.median or 0:,.0f}/s" for n, f in figs.items())
    )
