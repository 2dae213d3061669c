"""One handler per CLI command: call the operation, print its outcome, return the exit code."""

from __future__ import annotations

import argparse
from typing import Any

from app.ops import control, inspect, queues
from app.ops import health as checks
from app.ops.db import connect
from app.ops.errors import EXIT_FAILED, EXIT_OK
from app.ops.render import print_error, print_json, print_line, print_record, print_table

COUNTS = ["waiting", "delayed", "retrying", "active", "completed", "dead", "cancelled",
          "oldest_waiting_seconds"]
#: What a control command reports of each job it changed (status: before the change).
CHANGED_FIELDS = ("message_id", "status", "queue", "actor_name", "tenant_id")
COLUMNS = {
    "failed": ["message_id", "queue", "actor_name", "tenant_id", "attempts", "failed_at",
               "last_error", "args"],
    "active": ["message_id", "queue", "actor_name", "tenant_id", "hostname", "pid",
               "worker_alive", "running_seconds", "attempts", "progress"],
    "scheduled": ["message_id", "queue", "actor_name", "tenant_id", "status", "eta",
                  "due_in_seconds", "attempts", "last_error"],
    "recent": ["message_id", "queue", "actor_name", "tenant_id", "status", "finished_at",
               "duration_seconds", "attempts", "last_error"],
    "workers": ["worker_id", "hostname", "pid", "alive", "heartbeat_age_seconds",
                "active_jobs", "started_at", "queues"],
}


def _rows(args: argparse.Namespace, rows: list[dict[str, Any]], columns: list[str],
          title: str) -> int:
    if args.json:
        print_json(rows)
    else:
        print_table(rows, columns, title=title)
    return EXIT_OK


def stats(args: argparse.Namespace) -> int:
    with connect() as conn:
        if args.tenant is not None:
            tenant = None if args.tenant == "all" else args.tenant
            rows = inspect.tenant_stats(conn, tenant=tenant, queue=args.queue)
            return _rows(args, rows, ["tenant_id", "tenant_name", "queue", *COUNTS],
                         "jobs per tenant and queue")
        rows = inspect.queue_stats(conn, queue=args.queue)
        workers = inspect.worker_counts(conn)
    title = f"jobs per queue; workers alive: {workers['alive']} of {workers['registered']}"
    return _rows(args, rows, ["queue", "paused", *COUNTS], title)


def failed(args: argparse.Namespace) -> int:
    with connect() as conn:
        rows = inspect.failed(conn, queue=args.queue, tenant=args.tenant, actor=args.actor,
                              limit=args.limit)
    return _rows(args, rows, COLUMNS["failed"], "dead letters (newest first)")


def _listing(args: argparse.Namespace) -> int:
    with connect() as conn:
        rows = inspect.listing(conn, args.command, queue=args.queue, tenant=args.tenant,
                               limit=args.limit)
    return _rows(args, rows, COLUMNS[args.command], f"{args.command} jobs")


active = scheduled = recent = _listing


def workers(args: argparse.Namespace) -> int:
    with connect() as conn:
        rows = inspect.workers(conn)
    return _rows(args, rows, COLUMNS["workers"], "workers")


def show(args: argparse.Namespace) -> int:
    with connect() as conn:
        job = inspect.show(conn, args.id)
    if args.json:
        print_json(job)
    else:
        print_record(job, title=f"job {args.id} ({job['status']})")
    return EXIT_OK


def _outcome(args: argparse.Namespace, verb: str, outcome: control.Outcome) -> int:
    if args.json:
        changed = [{k: r[k] for k in CHANGED_FIELDS} for r in outcome.changed]
        print_json({"changed": changed, "skipped": outcome.skipped})
        return EXIT_OK
    print_line(f"{verb} {len(outcome.changed)} job(s)")
    for row in outcome.changed:
        print_line(f"  {row['message_id']}  {row['actor_name']}  queue={row['queue']}  "
                   f"was {row['status']}")
    for row in outcome.skipped:
        print_line(f"  skipped {row['message_id']}: {row['reason']}")
    return EXIT_OK


def retry(args: argparse.Namespace) -> int:
    with connect() as conn:
        if args.all:
            outcome = control.retry_all(conn, queue=args.queue)
        else:
            outcome = control.retry(conn, args.ids)
    return _outcome(args, "retried", outcome)


def cancel(args: argparse.Namespace) -> int:
    with connect() as conn:
        outcome = control.cancel(conn, args.ids)
    return _outcome(args, "cancelled", outcome)


def requeue(args: argparse.Namespace) -> int:
    with connect() as conn:
        outcome = control.requeue(conn, args.ids)
    return _outcome(args, "requeued", outcome)


def _warn_unknown(conn: Any, queue: str) -> None:
    if not queues.is_known(conn, queue):
        print_error(f"note: no job or worker mentions queue {queue!r} (a typo?)")


def pause(args: argparse.Namespace) -> int:
    with connect() as conn:
        queues.check_queue_name(args.queue)
        _warn_unknown(conn, args.queue)
        changed = queues.pause(conn, args.queue)
    if args.json:
        print_json({"queue": args.queue, "paused": True, "changed": changed})
    else:
        print_line(f"paused {args.queue}" if changed else f"{args.queue} was already paused")
    return EXIT_OK


def resume(args: argparse.Namespace) -> int:
    with connect() as conn:
        changed = queues.resume(conn, args.queue)
    if args.json:
        print_json({"queue": args.queue, "paused": False, "changed": changed})
    else:
        print_line(f"resumed {args.queue}" if changed else f"{args.queue} was not paused")
    return EXIT_OK


def clear(args: argparse.Namespace) -> int:
    with connect() as conn:
        queues.check_queue_name(args.queue)
        _warn_unknown(conn, args.queue)
        count = queues.clear(conn, args.queue, tenant=args.tenant, dry_run=args.dry_run)
    if args.json:
        print_json({"queue": args.queue, "deleted": 0 if args.dry_run else count,
                    "matching": count, "dry_run": args.dry_run})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print_line(f"{verb} {count} waiting or delayed job(s) of {args.queue}")
    return EXIT_OK


def purge(args: argparse.Namespace) -> int:
    with connect() as conn:
        count = queues.purge(conn, older_than=args.older_than, queue=args.queue,
                             dry_run=args.dry_run)
    if args.json:
        print_json({"deleted": 0 if args.dry_run else count, "matching": count,
                    "older_than_seconds": args.older_than, "dry_run": args.dry_run})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print_line(f"{verb} {count} finished job(s) older than {args.older_than:g}s")
    return EXIT_OK


def health(args: argparse.Namespace) -> int:
    report = checks.check(max_age=args.max_age, min_workers=args.min_workers)
    if args.json:
        print_json(report.as_dict())
    else:
        title = "healthy" if report.healthy else "UNHEALTHY"
        print_table([vars(c) for c in report.checks], ["name", "status", "detail"],
                    title=f"pgjobs health: {title}", limit=None)
        if report.queues:
            print_table(report.queues, ["queue", "paused", "waiting", "oldest_waiting_seconds"],
                        title="queues")
    return EXIT_OK if report.healthy else EXIT_FAILED
