"""``pgjobs recurring ...``: list, add, remove, enable and disable recurring tasks.

Registered by ``app.ops.cli`` as one subcommand; runs as the owner (``DATABASE_URL``).
``add`` checks a definition as ``recurring()`` does, its actor included: it loads the
actors (``app.actors`` and ``JOBS_MODULES``, as the scheduler will) and refuses a name none
of them registered (exit 2). ``list`` shows, per task, what the live scheduler leader
reported at its last sync: ``scheduled``, ``disabled``, or ``refused: <why>``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.ops.db import connect
from app.ops.errors import EXIT_OK, EXIT_UNKNOWN, BadArgument, OpsError
from app.ops.render import print_json, print_line, print_table
from app.scheduler import queries
from app.scheduler.declarations import (
    MISFIRE_POLICIES,
    RecurringDeclarationError,
    check_definition,
    unknown_actor_message,
)
from app.scheduler.definitions import task_of
from app.scheduler.settings import SchedulerSettings

COLUMNS = ["task", "actor_name", "cron", "timezone", "enabled", "misfire_policy", "status"]


class UnknownTask(OpsError):
    exit_code = EXIT_UNKNOWN


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of keyword arguments: {text!r}")
    return value


def register(sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    """Add ``recurring`` and its actions to the CLI's subparsers."""
    what = "list, add, remove, enable or disable recurring tasks"
    parser = sub.add_parser("recurring", help=what, description=what, epilog=epilog)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help, description=help, parents=[common],
                               epilog=epilog)
        p.set_defaults(handler=run)
        return p

    action("list", "every recurring task and whether the scheduler runs it")
    p = action("add", "define a recurring task (its actor must be registered)")
    p.add_argument("task", metavar="TASK")
    p.add_argument("actor", metavar="ACTOR", help="a registered actor name, e.g. reviews.check")
    p.add_argument("cron", metavar="CRON", help="5 fields, or 6 with seconds first (quoted)")
    p.add_argument("--timezone", metavar="TZ", help="IANA time zone (default: each tenant's)")
    p.add_argument("--misfire", choices=MISFIRE_POLICIES, default="run_once",
                   help="after downtime (default run_once)")
    p.add_argument("--catch-up-max", type=int, default=1, metavar="N",
                   help="catch_up: at most the last N missed slots (default 1)")
    p.add_argument("--grace", type=int, default=60, metavar="SECONDS",
                   help="skip: a slot later than this is dropped (default 60)")
    p.add_argument("--args", type=_json_object, default={}, metavar="JSON",
                   help="keyword arguments besides slot, as a JSON object")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--disabled", action="store_true", help="add it switched off")
    for name, help in (("remove", "delete a recurring task and its tenants' overrides"),
                       ("enable", "let a recurring task fire again"),
                       ("disable", "stop a recurring task firing (kept across restarts)")):
        action(name, help).add_argument("task", metavar="TASK")


def run(args: argparse.Namespace) -> int:
    if args.action == "add":
        return _add(args)
    with connect() as conn:
        if args.action == "list":
            return _list(args, conn)
        if args.action == "remove":
            row = conn.execute(queries.RECURRING_REMOVE, {"task": args.task}).fetchone()
        else:
            row = conn.execute(queries.RECURRING_ENABLE, {
                "task": args.task, "enabled": args.action == "enable"}).fetchone()
    if row is None:
        raise UnknownTask(f"no recurring task {args.task!r} (pgjobs recurring list)")
    done = {"remove": "removed", "enable": "enabled", "disable": "disabled"}[args.action]
    if args.json:
        print_json({"task": args.task, "action": done})
    else:
        print_line(f"{done} recurring task {args.task}")
    return EXIT_OK


def _list(args: argparse.Namespace, conn: Any) -> int:
    rows = conn.execute(queries.RECURRING_LIST).fetchall()
    leader = conn.execute(queries.LEADER_REPORT,
                          {"stale": SchedulerSettings.from_env().stale_seconds}).fetchone()
    alive = bool(leader and leader["alive"])
    refused = {task_of(e): e.split(": ", 1)[-1]
               for e in (leader["errors"] or "").split("; ") if e} if alive and leader else {}
    for row in rows:
        if not alive:
            row["status"] = "no live scheduler"
        elif row["task"] in refused:
            row["status"] = f"refused: {refused[row['task']]}"
        else:
            row["status"] = "scheduled" if row["enabled"] else "disabled"
    if args.json:
        print_json(rows)
    else:
        print_table(rows, COLUMNS, title="recurring tasks")
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    try:
        definition = check_definition(
            args.task, args.actor, args.cron, args.timezone, misfire=args.misfire,
            catch_up_max=args.catch_up_max, grace_seconds=args.grace, args=args.args,
            description=args.description)
    except RecurringDeclarationError as exc:
        raise BadArgument(str(exc)) from None
    # The actors the scheduler will know: the product's and JOBS_MODULES'.
    try:
        from app.actors import broker
    except (ImportError, ValueError) as exc:  # a JOBS_MODULES module missing or refused
        raise OpsError(f"cannot load the actors to check {args.actor!r}: {exc}") from None
    known = broker.get_declared_actors()
    if args.actor not in known:
        raise BadArgument(f"recurring task {args.task!r}: "
                          f"{unknown_actor_message(args.actor, known)}")
    with connect() as conn:
        row = conn.execute(queries.RECURRING_ADD,
                           {**definition.row(), "enabled": not args.disabled}).fetchone()
    if row is None:
        raise BadArgument(f"recurring task {args.task!r} already exists (remove it first, or "
                          "edit scheduler.recurring)")
    if args.json:
        print_json({"task": args.task, "action": "added"})
    else:
        print_line(f"added recurring task {args.task}")
    return EXIT_OK
