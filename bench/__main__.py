"""``python -m bench``: every scenario, every system, one table, results saved as JSON.

Flags: ``--quick`` (counts / 10, a smoke test), ``--long`` (the issue's design sizes: 10-minute
MVCC holds, 1M rows), ``--busy`` (two ``yes > /dev/null`` beside the run), ``--all`` (also the
scenarios left out of the default run), ``--only SCENARIO[,SCENARIO]``,
``--systems ours,stock,...``, ``--repeats N``; bench/README.md has the rest. The database is
``DATABASE_URL`` (an owner/superuser URL) or the project's development database. Worker
processes and bench databases are removed on exit, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from bench import dbadmin, machine, report
from bench.busy import HOGS, cpu_hogs
from bench.context import Context
from bench.plan import Plan
from bench.procs import kill_all
from bench.scenarios import DEFAULT, EXTRA, registry
from bench.systems import all_systems
from bench.waiting import CANCELLED

BUDGET_S = 600.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    scenarios = list(registry())
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="counts / 10: a smoke test")
    parser.add_argument("--long", action="store_true",
                        help="the issue's design sizes: 10-minute MVCC holds, 1,000,000 "
                             "finished + 100,000 delayed rows (far over 10 minutes)")
    parser.add_argument("--busy", action="store_true",
                        help=f"run {HOGS} `yes > /dev/null` beside the whole run")
    parser.add_argument("--all", action="store_true",
                        help=f"also the scenarios not in the default run ({', '.join(EXTRA)})")
    parser.add_argument("--mvcc-minutes", type=float, default=None,
                        help="how long idle_in_tx holds its XID and active_readers read "
                             "(default 0.5; the issue's 10 with --long)")
    parser.add_argument("--table-rows", type=int, default=None,
                        help="finished rows in table_size (default 100,000; --long 1,000,000)")
    parser.add_argument("--table-delayed", type=int, default=None,
                        help="delayed rows in table_size (default 10,000; --long 100,000)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated scenarios, of: {', '.join(scenarios)}"
    )
    parser.add_argument("--systems", default="", help="comma-separated systems (default: all)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (3)")
    parser.add_argument("--backlog", type=int, default=None,
                        help="jobs in the backlog scenario (default 40,000; the design target "
                             "is 200,000, which alone takes minutes)")
    parser.add_argument("--delayed", type=int, default=None,
                        help="jobs in the delayed scenario (default 20,000)")
    parser.add_argument("--no-save", action="store_true", help="don't write bench/results/")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the worker logs (they are kept anyway when a scenario fails)")
    args = parser.parse_args(argv)
    unknown = set(filter(None, args.only.split(","))) - set(scenarios)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Explicit handlers: a shell starts background jobs with SIGINT ignored, and cleanup
    # (workers, databases) must run on Ctrl-C and on kill alike.
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, _sigterm)
    console = Console()
    if not console.is_terminal:
        console = Console(width=240)  # a log file or CI: don't squeeze the table to 80
    started_at = time.time()

    plan = Plan().quick() if args.quick else Plan()
    if args.long:
        plan = plan.long()
    if args.mvcc_minutes:
        plan = replace(plan, mvcc_hold_s=args.mvcc_minutes * 60)
    if args.table_rows is not None:
        plan = replace(plan, table_rows=args.table_rows)
    if args.table_delayed is not None:
        plan = replace(plan, table_delayed=args.table_delayed)
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    if args.backlog:
        # A bigger backlog needs longer to drain: at least 2,000 jobs/s must be kept up.
        plan = replace(plan, backlog_jobs=args.backlog,
                       backlog_deadline_s=max(plan.backlog_deadline_s, args.backlog / 2_000))
    if args.delayed:
        plan = replace(plan, delayed_jobs=args.delayed)

    # Every connection the bench itself opens carries this name, so the chaos scenario's
    # pg_terminate_backend spares them (worker environments drop it).
    os.environ["PGAPPNAME"] = "bench-harness"
    load_at_start = machine.load_average()
    admin = dbadmin.admin_url()
    server = dbadmin.server_settings(admin)
    capacity = dbadmin.lock_capacity(server)
    wanted = set(filter(None, args.systems.split(",")))
    systems, skipped = [], []
    for system in all_systems():
        if wanted and system.key not in wanted:
            continue
        reason = system.unavailable()
        (skipped.append(f"{system.key}: {reason}") if reason else systems.append(system))

    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    ctx = Context(
        plan=plan,
        dbs=dbadmin.Databases(admin),
        log_dir=log_dir,
        systems=systems,
        server=server,
        lock_capacity=capacity,
        console=console,
        requested=frozenset(wanted),
    )
    for text in skipped:
        ctx.results.note(f"skipped {text}")
    console.rule(f"bench{' --quick' if args.quick else ''}: {len(systems)} systems")
    console.print(
        f"server: {server.get('version', '?').split(',')[0]} at {redact(admin)}; "
        f"max_locks_per_transaction={server.get('max_locks_per_transaction')}, "
        f"max_connections={server.get('max_connections')} -> lock table ~{capacity:,} locks; "
        f"worker logs in {log_dir}",
        highlight=False,
    )
    busy = max(load_at_start[0], load_at_start[1])
    if busy > 0.5 * (os.cpu_count() or 1):
        warning = (f"the machine was busy when the run started (load average "
                   f"{load_at_start[0]:.1f}/{load_at_start[1]:.1f} on {os.cpu_count()} cores): "
                   "figures are skewed by whatever else ran")
        console.print(f"[yellow]warning: {warning}[/]")
        ctx.results.note(warning)
    for system in systems:
        if system.config():
            ctx.results.note(f"{system.key}: {system.config()}")
    slow = [s.key for s in systems if s.slow]
    if slow:
        ctx.results.note(
            f"{' and '.join(slow)}: drains stop after {plan.slow_deadline_s:g}s "
            f"({2 * plan.slow_deadline_s:g}s for the backlog) so they cannot eat the time "
            "budget; such figures are marked 'deadline' and are rates over what was done"
        )
    if any(s.key == "stock" for s in systems):
        ctx.results.note(
            f"stock: it keeps one advisory lock per consumed message until idle; this server's "
            f"lock table holds ~{capacity:,} (max_locks_per_transaction="
            f"{server.get('max_locks_per_transaction')} x max_connections="
            f"{server.get('max_connections')}), so its runs stop at 70% of that ('capped'). "
            "Raise max_locks_per_transaction (ALTER SYSTEM, restart) to let it go further."
        )

    selected = [s for s in args.only.split(",") if s] or [
        *DEFAULT, *(EXTRA if args.all else ())]
    if not args.only and not args.all:
        ctx.results.note(f"not run by default (--all, or --only NAME): {', '.join(EXTRA)}")
    failed = interrupted = False
    hogs = cpu_hogs() if args.busy else None
    if hogs is not None:
        hogs.__enter__()
        ctx.results.note(f"--busy: {HOGS} `yes > /dev/null` ran beside the whole run")
    try:
        for name in selected:
            t0 = time.monotonic()
            console.rule(f"{name}")
            try:
                registry()[name](ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one scenario failing must not lose the others
                failed = True
                console.print(f"[red]scenario {name} failed: {exc}[/]")
                traceback.print_exc()
                ctx.results.note(f"scenario {name} failed: {type(exc).__name__}: {exc}")
            finally:
                kill_all()
            console.log(f"{name} took {time.monotonic() - t0:.0f}s "
                        f"(run so far {time.time() - started_at:.0f}s)")
    except KeyboardInterrupt:
        CANCELLED.set()
        console.print("[red]interrupted: cleaning up[/]")
        failed = interrupted = True
    finally:
        kill_all()
        if hogs is not None:
            hogs.__exit__(None, None, None)
        ctx.dbs.drop_all()

    elapsed = time.time() - started_at
    if elapsed > BUDGET_S and not args.only and not args.quick:
        ctx.results.note(f"run took {elapsed:.0f}s, over the {BUDGET_S:.0f}s budget")
    load_at_end = machine.load_average()
    load = report.Load(start=load_at_start, end=load_at_end, cores=os.cpu_count() or 1,
                       busy=args.busy)
    report.show(console, ctx.results, [s.key for s in systems], load)
    if interrupted:
        console.print("interrupted: results not saved")
    elif not args.no_save:
        data = report.payload(
            started_at=started_at,
            machine=machine.describe(server, redact(admin), load_at_start) | {
                "cpu_hogs": HOGS if args.busy else 0},
            targets=report.target_rows(ctx.results),
            plan=plan.to_json() | {"quick": args.quick, "long": args.long,
                                   "lock_capacity": capacity},
            results=ctx.results,
            argv=sys.argv[1:] if argv is None else argv,
            systems={s.key: s.config() for s in systems},
        )
        path = report.save(data)
        console.print(f"saved {path} and {report.RESULTS_DIR / 'latest.json'}")
    if failed or args.keep_logs:
        console.print(f"worker logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    console.print(f"total {elapsed:.0f}s")
    return 1 if failed else 0


def redact(url: str) -> str:
    import re

    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


if __name__ == "__main__":
    sys.exit(main())
