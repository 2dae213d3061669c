"""``pgjobs`` / ``python -m app.ops``: inspect and operate the job system from a shell.

Connects as the owner (``DATABASE_URL``), which sees every tenant. Tables for people by
default, ``--json`` for scripts. Exit codes are listed in ``app.ops.errors``.
"""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from app.ops import commands, tenant_commands
from app.ops.errors import EXIT_FAILED, EXIT_USAGE, OpsError
from app.ops.render import print_error

DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}

EPILOG = """exit codes: 0 ok; 1 unhealthy or database error; 2 bad arguments;
3 unknown job id; 4 the job's state rules the command out (nothing changed)"""


def duration(text: str) -> float:
    """'7d', '12h', '30m', '45s', '250ms' or plain seconds."""
    match = DURATION.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 15m, 12h, 7d)")
    return float(match.group(1)) * UNITS[match.group(2)]


def job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job id (a UUID): {text!r}") from None


def tenant_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a tenant id (a UUID): {text!r}") from None


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="pgjobs", description="Inspect and operate the PostgreSQL job system.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common], epilog=EPILOG)
        p.set_defaults(handler=getattr(commands, name))
        return p

    def filters(p: argparse.ArgumentParser, *, limit: bool = True) -> None:
        p.add_argument("--queue", help="only this queue")
        p.add_argument("--tenant", type=tenant_id, help="only this tenant")
        if limit:
            p.add_argument("--limit", type=positive, default=50, help="at most N rows (50)")

    p = command("stats", "job counts per queue (or per tenant and queue)")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--tenant", nargs="?", const="all", metavar="ID",
                   help="per tenant: all tenants, or only tenant ID")

    p = command("failed", "dead letters, newest first")
    filters(p)
    p.add_argument("--actor", help="only this actor")

    for name, what in (("active", "running jobs and their workers"),
                       ("scheduled", "jobs due later (delayed, or waiting for a retry)"),
                       ("recent", "recently finished jobs")):
        filters(command(name, what))
    command("workers", "worker processes and their heartbeats")

    p = command("show", "every detail of one job")
    p.add_argument("id", type=job_id, metavar="ID")

    p = command("retry", "run dead letters again (attempts reset)")
    p.add_argument("ids", type=job_id, nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true", help="every dead letter")
    p.add_argument("--queue", help="with --all: only this queue's dead letters")

    p = command("cancel", "cancel waiting or delayed jobs: they never run")
    p.add_argument("ids", type=job_id, nargs="+", metavar="ID")

    p = command("requeue", "run jobs now: delayed ones early, finished ones again")
    p.add_argument("ids", type=job_id, nargs="+", metavar="ID")

    for name, what in (("pause", "stop every worker claiming from a queue (jobs still accepted)"),
                       ("resume", "let workers claim from a paused queue again")):
        command(name, what).add_argument("queue", metavar="QUEUE")

    p = command("clear", "delete a queue's waiting and delayed jobs")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--tenant", type=tenant_id, help="only this tenant's jobs")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    p = command("purge", "delete finished jobs (completed, dead, cancelled)")
    p.add_argument("--older-than", type=duration, default=duration("7d"), metavar="AGE",
                   help="finished more than AGE ago (default 7d; 0 for all)")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    p = command("health", "database, migrations, workers, queue ages; exit 1 if unhealthy")
    p.add_argument("--max-age", type=duration, default=duration("5m"), metavar="AGE",
                   help="fail when a due job waits longer than AGE (default 5m)")
    p.add_argument("--min-workers", type=int, default=1, metavar="N",
                   help="fail with fewer than N live workers (default 1)")

    # The webhook intake's commands (webhooks list/show/replay, intake endpoint/secret/token).
    from app.intake.cli import register as register_intake

    register_intake(sub, common, duration)
    # Tenants: create, rename, deactivate, activate, list (app/ops/tenant_commands.py).
    tenant_commands.register(sub, common, EPILOG)
    # The dashboard's tenant admin accounts (logic in app/dashboard/admins.py).
    from app.dashboard import admins

    admins.register(sub, common, tenant_id)
    # Recurring tasks: list, add, remove, enable, disable (app/scheduler/commands.py).
    from app.scheduler import commands as recurring_commands

    recurring_commands.register(sub, common, EPILOG)
    return parser


def check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "retry":
        if args.all == bool(args.ids):
            parser.error("retry: give job ids or --all (not both)")
        if args.queue and not args.all:
            parser.error("retry: --queue goes with --all")
    if args.command == "stats" and args.tenant not in (None, "all"):
        try:
            args.tenant = tenant_id(args.tenant)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"stats: --tenant: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        check_combinations(parser, args)
    except SystemExit as exc:  # argparse: --help (0) or bad arguments (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        result: Any = args.handler(args)
    except OpsError as exc:
        print_error(str(exc))
        return exc.exit_code
    except psycopg.OperationalError as exc:
        print_error(f"database unreachable or failing: {str(exc).strip()}")
        return EXIT_FAILED
    except psycopg.Error as exc:
        print_error(f"database error: {str(exc).strip()}")
        return EXIT_FAILED
    return int(result or 0)
