"""``pgjobs webhooks ...`` and ``pgjobs intake ...``: stored events, replay, registration.

Registered by ``app.ops.cli`` (one call, :func:`register`); the logic is here. Listing and
finding an event's tenant use the operator (owner) connection; every change is made in the
event's or endpoint's own tenant (``app.intake.replay``, ``app.intake.admin``).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from app.config import get_settings
from app.db.connections import connect
from app.ops.errors import BadArgument, NotApplicable, OpsError, UnknownJob
from app.ops.render import print_json, print_line, print_record, print_table
from app.services import webhook_events

EVENT_COLUMNS = ("id", "tenant_id", "source", "external_event_id", "event_type", "status",
                 "attempts", "received_at", "processed_at", "error")


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id (a UUID): {text!r}") from None


def register(sub: Any, common: argparse.ArgumentParser, duration: Any) -> None:
    """Add the ``webhooks`` and ``intake`` command groups to the ``pgjobs`` parser."""
    hooks = sub.add_parser("webhooks", help="stored webhook events: list, show, replay",
                           parents=[common]).add_subparsers(dest="action", required=True)
    p = hooks.add_parser("list", help="stored events, newest first", parents=[common])
    p.add_argument("--status", choices=webhook_events.STATUSES)
    p.add_argument("--source")
    p.add_argument("--tenant", type=_uuid)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=cmd_list)
    p = hooks.add_parser("show", help="one stored event", parents=[common])
    p.add_argument("id", type=_uuid, metavar="EVENT_ID")
    p.set_defaults(handler=cmd_show)
    p = hooks.add_parser("replay", help="process stored events again (FAILED or dead ones)",
                         parents=[common])
    p.add_argument("ids", type=_uuid, nargs="+", metavar="EVENT_ID")
    p.add_argument("--tenant", type=_uuid, help="the events' tenant (else looked up)")
    p.add_argument("--force", action="store_true",
                   help="also COMPLETED events, or ones whose job has not finished")
    p.set_defaults(handler=cmd_replay)

    admin = sub.add_parser("intake", help="register endpoints, signing secrets, API tokens",
                           parents=[common]).add_subparsers(dest="action", required=True)
    p = admin.add_parser("endpoint-add", help="a new endpoint (prints its token once)",
                         parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--key", help="the sender's own name: Shopify shop domain, Slack team id")
    p.add_argument("--name")
    p.set_defaults(handler=cmd_endpoint_add)
    p = admin.add_parser("endpoints", help="endpoints and their live secrets", parents=[common])
    p.add_argument("--tenant", type=_uuid)
    p.set_defaults(handler=cmd_endpoints)
    p = admin.add_parser("endpoint-disable", help="stop accepting an endpoint",
                         parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("endpoint", type=_uuid)
    p.set_defaults(handler=cmd_endpoint_disable)
    p = admin.add_parser("secret-add", help="add a signing secret (stdin, or generated)",
                         parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("endpoint", type=_uuid)
    p.add_argument("--stdin", action="store_true", help="read the provider's secret from stdin")
    p.set_defaults(handler=cmd_secret_add)
    p = admin.add_parser("secret-rotate", help="a new secret; the old one verifies for GRACE",
                         parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("endpoint", type=_uuid)
    p.add_argument("--stdin", action="store_true")
    p.add_argument("--grace", type=duration, default=duration("24h"))
    p.set_defaults(handler=cmd_secret_rotate)
    p = admin.add_parser("secret-retire", help="a secret stops verifying (now or after --in)",
                         parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("secret", type=_uuid)
    p.add_argument("--in", dest="after", type=duration, default=0.0)
    p.set_defaults(handler=cmd_secret_retire)
    p = admin.add_parser("token-add", help="an API token for the activity feed (printed once)",
                         parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("--name")
    p.set_defaults(handler=cmd_token_add)
    p = admin.add_parser("token-revoke", help="revoke an API token", parents=[common])
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("token", type=_uuid)
    p.set_defaults(handler=cmd_token_revoke)


def _owner() -> psycopg.Connection:
    return connect(get_settings().database_url, name="pgjobs-intake-cli")


def _event_dict(row: webhook_events.StoredEvent) -> dict[str, Any]:
    return asdict(row)


def cmd_list(args: argparse.Namespace) -> int:
    with _owner() as conn:
        rows = [_event_dict(r) for r in webhook_events.list_events(
            conn, status=args.status, source=args.source, tenant=args.tenant, limit=args.limit)]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, EVENT_COLUMNS, title="webhook events")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _owner() as conn:
        row = webhook_events.get(conn, args.id)
    if row is None:
        raise UnknownJob(f"no webhook event {args.id}")
    data = _event_dict(row)
    if args.json:
        print_json(data)
    else:
        print_record(data, title=f"webhook event {args.id}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from app.intake.replay import ReplayError, replay

    done, failed = [], None
    for event_id in args.ids:
        try:
            result = replay(event_id, tenant=args.tenant, force=args.force)
        except ReplayError as exc:
            failed = UnknownJob(str(exc)) if exc.unknown else NotApplicable(str(exc))
            print(f"pgjobs: {exc}", file=sys.stderr)
            continue
        done.append({"id": str(result.webhook_event_id), "tenant_id": str(result.tenant_id),
                     "job_id": result.job_id, "was": result.previous_status})
    if args.json:
        print_json(done)
    else:
        for item in done:
            print_line(f"replayed {item['id']} (was {item['was']}): job {item['job_id']}")
    if failed is not None:
        raise failed
    return 0


def _admin_call(fn: Any, *a: Any, **kw: Any) -> Any:
    from app.intake.admin import AdminError

    try:
        return fn(*a, **kw)
    except AdminError as exc:
        raise BadArgument(str(exc)) from None


def _secret_from(args: argparse.Namespace) -> str | None:
    if not args.stdin:
        return None
    value = sys.stdin.readline().strip()
    if not value:
        raise BadArgument("no secret on stdin")
    return value


def cmd_endpoint_add(args: argparse.Namespace) -> int:
    from app.intake import admin

    new = _admin_call(admin.add_endpoint, args.tenant, args.source, key=args.key,
                      name=args.name)
    out = {"endpoint_id": str(new.endpoint_id), "token": new.token,
           "path": f"/webhooks/{args.source}/{new.token}" if args.source != "slack"
           else f"/slack/events/{new.token}"}
    print_json(out) if args.json else print_record(out, title="endpoint (token shown once)")
    return 0


def cmd_endpoints(args: argparse.Namespace) -> int:
    from app.intake import admin

    rows = admin.list_endpoints(args.tenant)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ("id", "tenant_id", "source", "external_key", "name",
                           "active_secrets", "created_at", "disabled_at"), title="endpoints")
    return 0


def cmd_endpoint_disable(args: argparse.Namespace) -> int:
    from app.intake import admin

    if not admin.disable_endpoint(args.tenant, args.endpoint):
        raise NotApplicable(f"no active endpoint {args.endpoint} for tenant {args.tenant}")
    print_line(f"disabled {args.endpoint}")
    return 0


def cmd_secret_add(args: argparse.Namespace) -> int:
    from app.intake import admin

    value = _secret_from(args)
    new = _admin_call(admin.add_secret, args.tenant, args.endpoint, value)
    out = {"secret_id": str(new.secret_id), "secret": None if value else new.value}
    print_json(out) if args.json else print_record(out, title="secret (shown once)")
    return 0


def cmd_secret_rotate(args: argparse.Namespace) -> int:
    from app.intake import admin

    value = _secret_from(args)
    new = _admin_call(admin.rotate_secret, args.tenant, args.endpoint, value,
                      timedelta(seconds=args.grace))
    out = {"secret_id": str(new.secret_id), "secret": None if value else new.value,
           "old_secrets_retire_at": (datetime.now(UTC)
                                     + timedelta(seconds=args.grace)).isoformat()}
    print_json(out) if args.json else print_record(out, title="rotated (secret shown once)")
    return 0


def cmd_secret_retire(args: argparse.Namespace) -> int:
    from app.intake import admin

    at = datetime.now(UTC) + timedelta(seconds=args.after)
    if not admin.retire_secret(args.tenant, args.secret, at):
        raise NotApplicable(f"no live secret {args.secret} for tenant {args.tenant}")
    print_line(f"secret {args.secret} retires at {at.isoformat()}")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    from app.intake import admin

    token_id, token = _admin_call(admin.add_api_token, args.tenant, args.name)
    out = {"token_id": str(token_id), "token": token}
    print_json(out) if args.json else print_record(out, title="API token (shown once)")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from app.intake import admin

    if not admin.revoke_api_token(args.tenant, args.token):
        raise NotApplicable(f"no live API token {args.token} for tenant {args.tenant}")
    print_line(f"revoked {args.token}")
    return 0


__all__ = ["OpsError", "register"]
