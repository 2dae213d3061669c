"""Scenario 7: references on the same machine, to read the job systems' figures against.

* ``pgbench`` committing a one-row insert (a queue-like row: bigserial key, jsonb, a
  timestamp) with 1, 2 and 8 clients: the server's ceiling for "one job per transaction".
* dramatiq's ``StubBroker`` draining no-op jobs in one process, no database: the ceiling
  of the worker itself with dramatiq's default middleware, with Retries only, and with our
  broker's default middleware stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.context import Context
from bench.dbadmin import connect
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


def pgbench_binary() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    return None


def run(ctx: Context) -> None:
    run_pgbench(ctx)
    run_stub(ctx)


def run_pgbench(ctx: Context) -> None:
    plan = ctx.plan
    binary = pgbench_binary()
    figs = {
        c: ctx.results.add(Figure(SCENARIO, f"pgbench 1-row insert, {c} client(s) (tps)",
                                  SYSTEM, "tps", True))
        for c in plan.pgbench_clients
    }
    if binary is None:
        for fig in figs.values():
            fig.status, fig.note = "skipped", "pgbench not found"
        return
    with ctx.dbs.fresh("bench_ref_pgbench") as url, tempfile.TemporaryDirectory() as tmp:
        with connect(url) as conn:
            conn.execute(
                "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
        script = Path(tmp) / "insert.sql"
        script.write_text(PGBENCH_SQL)
        for _ in range(plan.repeats):
            for clients, fig in figs.items():
                argv = [
                    binary, "-n", "-M", "prepared", "-f", str(script), "-c", str(clients),
                    "-j", str(min(clients, 2)), "-T", str(max(1, round(plan.pgbench_seconds))),
                    url,
                ]
                proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                match = re.search(r"tps = ([\d.]+) \(without initial", proc.stdout)
                if proc.returncode or not match:
                    fig.status, fig.note = "error", (proc.stderr or proc.stdout)[-300:]
                    continue
                fig.values.append(float(match.group(1)))
    for clients, fig in figs.items():
        ctx.log(f"  pgbench {clients} client(s): {fig.median or 0:,.0f} tps")


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
