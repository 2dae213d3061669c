"""Profile our side of a figure: ``python -m bench.profile {enqueue,drain-noop,drain-write}``.

* ``enqueue``: pyinstrument around one-job-per-transaction enqueues in this process.
* ``drain-*``: py-spy samples a running worker process (the dramatiq child) while it drains
  jobs, then prints the functions with the most samples, inclusive and self.

Uses the same database selection and helpers as ``python -m bench``; everything it creates
is removed afterwards. Needs ``pyinstrument`` / ``py-spy`` (``pip install pyinstrument
py-spy``); py-spy needs ptrace rights (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench import dbadmin
from bench.context import Context
from bench.dbadmin import connect
from bench.plan import Plan
from bench.procs import kill_all, tree, venv_tool
from bench.systems.ours import Ours


def top_frames(raw: str, limit: int = 25) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Inclusive and self sample counts per frame from py-spy's collapsed ("raw") output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    return inclusive.most_common(limit), own.most_common(limit)


def profile_enqueue(ctx: Context, n: int) -> None:
    from pyinstrument import Profiler

    system = Ours()
    with ctx.database(system, "profile") as url, system.enqueuer(url) as enq:
        enq.one("noop", 0)
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        with profiler:
            for i in range(1, n + 1):
                enq.one("noop", i)
        rate = n / (time.perf_counter() - started)
        ctx.console.print(f"ours: {rate:,.0f} jobs/s, one job per transaction (profiled)")
        ctx.console.print(profiler.output_text(unicode=True, color=False, show_all=False))


def profile_drain(ctx: Context, kind: str, n: int, seconds: float, gil: bool) -> None:
    spy = shutil.which("py-spy") or venv_tool("py-spy")
    system = Ours()
    with ctx.database(system, "profile") as url:
        tenants = system.make_tenants(url, 10)
        workers = ctx.start(system, url, 1, f"profile-{kind}")
        ctx.wait_ready(system, url, workers)
        child = next(p for p in tree(workers[0].pid) if p != workers[0].pid)
        out = Path(tempfile.mkdtemp(prefix="bench-profile-")) / f"{kind}.txt"
        with system.enqueuer(url, tenants) as enq, connect(url) as conn:
            enq.many(kind, range(n))
            started = time.time()
            proc = subprocess.run(
                [spy, "record", "--pid", str(child), "--duration", str(int(seconds)),
                 "--rate", "250", "--format", "raw", "--output", str(out), "--threads",
                 *(["--gil"] if gil else [])],
                capture_output=True, text=True, check=False,
            )
            left = system.remaining(conn)
            elapsed = time.time() - started
        if proc.returncode:
            raise SystemExit(f"py-spy failed: {proc.stderr[-500:]}")
        done = n - left
        ctx.console.print(f"ours {kind}: {done:,} jobs in {elapsed:.1f}s while sampled "
                          f"({done / elapsed:,.0f} jobs/s); raw stacks: {out}")
        inclusive, own = top_frames(out.read_text())
        ctx.console.print("[bold]inclusive[/]")
        for frame, count in inclusive:
            ctx.console.print(f"{count:7d}  {frame}", highlight=False)
        ctx.console.print("[bold]self[/]")
        for frame, count in own:
            ctx.console.print(f"{count:7d}  {frame}", highlight=False)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=("enqueue", "drain-noop", "drain-write"))
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--gil", action="store_true",
                        help="sample only the thread holding the GIL (where CPU goes)")
    parser.add_argument("--quiet-events", action="store_true",
                        help="workers log job events at WARNING instead of INFO (to measure "
                             "what the per-job event lines cost)")
    args = parser.parse_args()
    if args.quiet_events:
        os.environ["BENCH_QUIET_EVENTS"] = "1"
    console = Console(width=200)
    admin = dbadmin.admin_url()
    server = dbadmin.server_settings(admin)
    ctx = Context(Plan(), dbadmin.Databases(admin), Path(tempfile.mkdtemp(prefix="bench-logs-")),
                  [Ours()], server, dbadmin.lock_capacity(server), console)
    try:
        if args.what == "enqueue":
            profile_enqueue(ctx, args.jobs or 2_000)
        else:
            kind = args.what.split("-", 1)[1]
            profile_drain(ctx, kind, args.jobs or 50_000, args.seconds, args.gil)
    finally:
        kill_all()
        ctx.dbs.drop_all()
        shutil.rmtree(ctx.log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
