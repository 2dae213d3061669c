"""``pgjobs tenants ...``: create, rename, deactivate, activate and list tenants.

Registered by ``app.ops.cli`` as one subcommand; the work is done by ``app.tenants``.
Exit codes as for every command: 2 for a bad name or time zone, 3 for an unknown tenant id.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import asdict
from typing import Any

from app import tenants
from app.ops.db import connect
from app.ops.errors import EXIT_OK, EXIT_UNKNOWN, BadArgument, OpsError
from app.ops.render import print_json, print_line, print_table

COLUMNS = ["id", "name", "timezone", "active", "created_at"]


class UnknownTenant(OpsError):
    exit_code = EXIT_UNKNOWN


def _tenant_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a tenant id (a UUID): {text!r}") from None


def register(sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    """Add ``tenants`` and its actions to the CLI's subparsers."""
    what = "create, rename, deactivate, activate or list tenants"
    parser = sub.add_parser("tenants", help=what, description=what, epilog=epilog)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help, description=help, parents=[common],
                               epilog=epilog)
        p.set_defaults(handler=run)
        return p

    p = action("create", "create an active tenant; prints its id")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--timezone", default="UTC", metavar="TZ",
                   help="IANA time zone of its schedules (default UTC)")
    p = action("rename", "give a tenant a new name")
    p.add_argument("id", type=_tenant_id, metavar="ID")
    p.add_argument("name", metavar="NAME")
    action("deactivate", "stop running a tenant's jobs (its data is kept)").add_argument(
        "id", type=_tenant_id, metavar="ID")
    action("activate", "run a deactivated tenant's jobs again").add_argument(
        "id", type=_tenant_id, metavar="ID")
    p = action("list", "every tenant, oldest first")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--active", dest="only", action="store_const", const=True,
                       help="only active tenants")
    state.add_argument("--inactive", dest="only", action="store_const", const=False,
                       help="only inactive tenants")


def run(args: argparse.Namespace) -> int:
    try:
        with connect() as conn:
            return _run(args, conn)
    except tenants.TenantError as exc:
        raise BadArgument(str(exc)) from None
    except tenants.TenantNotFound as exc:
        raise UnknownTenant(str(exc)) from None


def _run(args: argparse.Namespace, conn: Any) -> int:
    if args.action == "list":
        rows = [asdict(t) for t in tenants.list_tenants(active=args.only, conn=conn)]
        if args.json:
            print_json(rows)
        else:
            print_table(rows, COLUMNS, title="tenants")
        return EXIT_OK
    changed: bool | None = None
    if args.action == "create":
        tenant = tenants.create_tenant(args.name, timezone=args.timezone, conn=conn)
    elif args.action == "rename":
        tenant = tenants.rename_tenant(args.id, args.name, conn=conn)
    else:
        toggle = (tenants.activate_tenant if args.action == "activate"
                  else tenants.deactivate_tenant)
        change = toggle(args.id, conn=conn)
        tenant, changed = change.tenant, change.changed
    if args.json:
        print_json({**asdict(tenant), **({} if changed is None else {"changed": changed})})
    elif args.action == "create":
        print_line(str(tenant.id))
    elif changed is False:
        print_line(f"tenant {tenant.id} was already {'active' if tenant.active else 'inactive'}")
    else:
        print_line(f"{args.action}d tenant {tenant.id} ({tenant.name})"
                   if args.action != "rename" else f"renamed tenant {tenant.id} to {tenant.name}")
    return EXIT_OK
