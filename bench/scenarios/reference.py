"""Scenario 7: references on the same machine, to read the job systems' figures against.

* (``pgbench``'s one-row insert, the server's ceiling for "one job per transaction", is in
  the ``write_jobs`` scenario, next to the figures it is read against.)
* dramatiq's ``StubBroker`` draining no-op jobs in one process, no database: the ceiling
  of the worker itself with dramatiq's default middleware, with Retries only, and with our
  broker's default middleware stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bench.context import Context
from bench.procs import REPO
from bench.results import Figure

SCENARIO = "reference"
SYSTEM = "reference"
PGBENCH_SQL = "INSERT INTO bench_insert (payload) VALUES ('{\"i\": 1}');\n"
STUB_VARIANTS = (
    ("default", "StubBroker, dramatiq default middleware"),
    ("retries", "StubBroker, Retries only"),
    ("ours", "StubBroker, our default middleware"),
)


def run(ctx: Context) -> None:
    run_stub(ctx)


def run_stub(ctx: Context) -> None:
    plan = ctx.plan
    for variant, label in STUB_VARIANTS:
        fig = ctx.results.add(Figure(SCENARIO, f"{label} (jobs/s/process)", SYSTEM, "jobs/s",
                                     True))
        if variant == "ours" and not any(s.key == "ours" for s in ctx.systems):
            fig.status, fig.note = "skipped", "app.jobs not available"
            continue
        with tempfile.TemporaryDirectory(prefix="bench-prom-") as prom:
            env = {**os.environ, "dramatiq_prom_db": prom,
                   "PYTHONPATH": str(REPO)}
            proc = subprocess.run(
                [sys.executable, "-m", "bench.stubref", variant, str(plan.stub_jobs),
                 str(plan.repeats)],
                cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300,
            )
        try:
            data = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            fig.status, fig.note = "error", proc.stderr[-300:]
            continue
        fig.values.extend(data["rates"])
        fig.extra["middleware"] = data["middleware"]
        fig.note = "middleware: " + ", ".join(data["middleware"])
        ctx.log(f"  {label}: {fig.median or 0:,.0f} jobs/s")
