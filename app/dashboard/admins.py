"""Tenant admin accounts: created, re-passworded and disabled inside the tenant's session.

``pgjobs dashboard-admin add --tenant ID --username NAME`` (the password is read from the
terminal, or from stdin with ``--password-stdin``). Usernames are unique across tenants,
because signing in finds the tenant from the username.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid

import psycopg

from app.dashboard.passwords import ITERATIONS, hash_password
from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.ops.errors import EXIT_OK, BadArgument, UnknownJob
from app.ops.render import print_line
from app.store import dashboard as queries


def normal_username(username: str) -> str:
    name = username.strip().lower()
    if not 3 <= len(name) <= 200 or any(c.isspace() for c in name) or ":" in name:
        raise BadArgument("username must be 3 to 200 characters, without spaces or ':'")
    return name


def create_admin(tenant_id: uuid.UUID, username: str, password: str, *,
                 iterations: int = ITERATIONS) -> uuid.UUID:
    """A new admin of ``tenant_id``; BadArgument if the username is taken."""
    name = normal_username(username)
    try:
        encoded = hash_password(password, iterations=iterations)
    except ValueError as exc:
        raise BadArgument(str(exc)) from None
    try:
        with tenant_session(tenant_id) as session:
            row = raw_connection(session).execute(
                queries.CREATE_ADMIN, {"username": name, "hash": encoded}).fetchone()
    except psycopg.errors.UniqueViolation:
        raise BadArgument(f"username {name!r} is taken (usernames are unique across "
                          "tenants)") from None
    except psycopg.errors.ForeignKeyViolation:
        raise BadArgument(f"no tenant {tenant_id}") from None
    except Exception as exc:  # SQLAlchemy wraps the driver's errors
        cause = getattr(exc, "orig", None)
        if isinstance(cause, psycopg.errors.UniqueViolation):
            raise BadArgument(f"username {name!r} is taken (usernames are unique across "
                              "tenants)") from None
        if isinstance(cause, psycopg.errors.ForeignKeyViolation):
            raise BadArgument(f"no tenant {tenant_id}") from None
        raise
    assert row is not None
    return uuid.UUID(str(row[0]))


def set_password(tenant_id: uuid.UUID, username: str, password: str) -> None:
    name = normal_username(username)
    try:
        encoded = hash_password(password)
    except ValueError as exc:
        raise BadArgument(str(exc)) from None
    with tenant_session(tenant_id) as session:
        row = raw_connection(session).execute(
            queries.SET_ADMIN_PASSWORD, {"username": name, "hash": encoded}).fetchone()
    if row is None:
        raise UnknownJob(f"tenant {tenant_id} has no admin {name!r}")


def disable_admin(tenant_id: uuid.UUID, username: str) -> None:
    name = normal_username(username)
    with tenant_session(tenant_id) as session:
        row = raw_connection(session).execute(queries.DISABLE_ADMIN,
                                              {"username": name}).fetchone()
    if row is None:
        raise UnknownJob(f"tenant {tenant_id} has no admin {name!r}")


# -- the CLI (registered in app/ops/cli.py) ---------------------------------------------------

def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("password: ")


def command(args: argparse.Namespace) -> int:
    if args.verb == "add":
        admin = create_admin(args.tenant, args.username, _password(args))
        print_line(f"added dashboard admin {normal_username(args.username)} ({admin}) "
                   f"of tenant {args.tenant}")
    elif args.verb == "password":
        set_password(args.tenant, args.username, _password(args))
        print_line(f"new password set for {normal_username(args.username)}")
    else:
        disable_admin(args.tenant, args.username)
        print_line(f"disabled {normal_username(args.username)}: signed out at next request")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,  # type: ignore[type-arg]
             tenant_type: object) -> None:
    p = sub.add_parser("dashboard-admin", parents=[common],
                       help="tenant admin accounts of the dashboard (add, password, disable)")
    p.add_argument("verb", choices=("add", "password", "disable"))
    p.add_argument("--tenant", type=tenant_type, required=True, help="the tenant's id")
    p.add_argument("--username", required=True)
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from stdin (default: prompt)")
    p.set_defaults(handler=command)
