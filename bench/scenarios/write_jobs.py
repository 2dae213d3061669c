"""Jobs that write one row, against what PostgreSQL commits on this machine (target 2).

Ours runs ``write`` jobs (one row in the job's tenant under RLS, committed with the job's
completion) on one worker process with 1, 2 and 8 threads; ``pgbench`` commits a one-row
insert of a queue-like row with as many clients (``-M prepared``, ``-T`` seconds, its
default ``synchronous_commit``). The two alternate within each repeat so a noisy neighbour
hits both. The ratio column ours/pgbench is the figure the issue's target is about: how
close a real job's path (claim, BEGIN, tenant setting, the statement, completion, COMMIT)
comes to the statement's own cost. Peers are not in it: their write figure is in ``drain``.
"""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.context import Context
from bench.dbadmin import connect
from bench.results import Figure
from bench.scenarios.drain import check_outcomes
from bench.waiting import wait_drained

SCENARIO = "write_jobs"
SYSTEMS = ("ours",)
PGBENCH_SQL = "INSERT INTO bench_insert (payload) VALUES ('{\"i\": 1}');\n"


def pgbench_binary() -> str | None:
    import shutil

    found = shutil.which("pgbench")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    return None


def run(ctx: Context) -> None:
    plan = ctx.plan
    systems = [s for s in ctx.systems if s.key in SYSTEMS or s.key in ctx.requested]
    systems = [s for s in systems if "write" in s.kinds]
    pgb = {t: ctx.results.add(Figure(SCENARIO, f"1-row writes, {t} thread(s)/client(s) (/s)",
                                     "pgbench", "/s", True, tag=f"write_pgbench_{t}"))
           for t in plan.write_threads}
    ours = {(s.key, t): ctx.results.add(Figure(
                SCENARIO, f"1-row writes, {t} thread(s)/client(s) (/s)", s.key, "/s", True,
                tag=f"write_{s.key}_{t}"))
            for s in systems for t in plan.write_threads}
    binary = pgbench_binary()
    with ctx.dbs.fresh("bench_pgbench") as pg_url, tempfile.TemporaryDirectory() as tmp:
        with connect(pg_url) as conn:
            conn.execute(
                "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
        script = Path(tmp) / "insert.sql"
        script.write_text(PGBENCH_SQL)
        for system in systems:
            with ctx.database(system, SCENARIO) as url:
                tenants = system.make_tenants(url, plan.write_tenants)
                done = 0
                for threads in plan.write_threads:
                    workers = ctx.start(system, url, 1, f"{SCENARIO}-{threads}",
                                        concurrency=threads)
                    try:
                        ctx.wait_ready(system, url, workers)
                        with system.enqueuer(url, tenants) as enq, connect(url) as conn:
                            for r in range(plan.repeats):
                                if binary is None:
                                    pgb[threads].status = "skipped"
                                    pgb[threads].note = "pgbench not found"
                                elif system is systems[0]:
                                    pgbench(binary, script, pg_url, threads,
                                            plan.pgbench_seconds, pgb[threads])
                                n = plan.write_jobs
                                base = (threads * 100 + r) * n
                                fig = ours[system.key, threads]
                                enq.many("write", range(base, base + n))
                                started = time.time()
                                outcome = wait_drained(
                                    functools.partial(system.remaining, conn), total=n,
                                    started=started,
                                    deadline_s=plan.drain_deadline_s, stall_s=plan.stall_s,
                                )
                                fig.values.append(outcome.rate)
                                done += outcome.done
                                if outcome.status != "ok":
                                    fig.status, fig.note = outcome.status, outcome.describe()
                                    break
                            fig = ours[system.key, threads]
                            check_outcomes(system, conn, fig, "write", done=done,
                                           complete=fig.status == "ok")
                    finally:
                        for w in workers:
                            w.kill()
    for system in systems:
        ctx.log(f"  {system.key}: " + ", ".join(
            f"{t} thr {ours[system.key, t].median or 0:,.0f}/s vs pgbench "
            f"{pgb[t].median or 0:,.0f}/s" for t in plan.write_threads))


def pgbench(binary: str, script: Path, url: str, clients: int, seconds: float,
            fig: Figure) -> None:
    argv = [binary, "-n", "-M", "prepared", "-f", str(script), "-c", str(clients),
            "-j", str(min(clients, 2)), "-T", str(max(1, round(seconds))), url]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    match = re.search(r"tps = ([\d.]+) \(without initial", proc.stdout)
    if proc.returncode or not match:
        fig.status, fig.note = "error", (proc.stderr or proc.stdout)[-300:]
        return
    fig.values.append(float(match.group(1)))
