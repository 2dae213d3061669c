"""Recurring tasks declared in code, next to their actors, checked when they are declared.

``recurring(task="shopnotes.summary", actor=summarize, cron="0 18 * * *")`` refuses at once
(``RecurringDeclarationError``, a ValueError naming the task) an actor the broker does not
know, an actor that cannot take the firing's arguments (``slot`` plus ``args``), a cron or
time zone that does not parse and a misfire policy that does not exist. Declarations are
kept in this process; the scheduler writes them to ``scheduler.recurring`` when it takes
the lead (``write_declared``), so the definitions table stays the one place every process
reads. The code owns what it declares: the actor, cron, time zone, misfire policy and args
are rewritten from it on each takeover, while ``enabled`` is the operator's (``pgjobs
recurring disable`` survives restarts) and per-tenant schedules are
``scheduler.tenant_overrides`` rows. A task removed from the code stays in the table until
an operator removes it (``pgjobs recurring remove``).
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from app.scheduler import queries
from app.scheduler.cron import InvalidSchedule, trigger_for

logger = logging.getLogger(__name__)

MISFIRE_POLICIES = ("skip", "run_once", "catch_up")
#: APScheduler's job id is ``task|cron|timezone`` in a varchar(191); leave room for the rest.
MAX_TASK = 100
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class RecurringDeclarationError(ValueError):
    """A recurring task cannot be scheduled as declared; the message names the task and why."""


@dataclass(frozen=True)
class RecurringTask:
    """One row of ``scheduler.recurring``, as code declares it."""

    task: str
    actor_name: str
    cron: str
    #: None: each tenant's own time zone (``tenants.timezone``).
    timezone: str | None
    misfire: str = "run_once"
    catch_up_max: int = 1
    grace_seconds: int = 60
    args: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def row(self) -> dict[str, Any]:
        return {"task": self.task, "actor_name": self.actor_name, "cron": self.cron,
                "timezone": self.timezone, "misfire_policy": self.misfire,
                "catch_up_max": self.catch_up_max, "grace": self.grace_seconds,
                "args": json.dumps(self.args, sort_keys=True), "description": self.description}


#: Every task declared in this process, by name.
DECLARED: dict[str, RecurringTask] = {}


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_definition(
    task: str, actor_name: str, cron: str, timezone: str | None = None, *,
    misfire: str = "run_once", catch_up_max: int = 1, grace_seconds: int = 60,
    args: Mapping[str, Any] | None = None, description: str | None = None,
) -> RecurringTask:
    """A definition's own fields checked (everything but the actor); the CLI uses it too."""
    if not isinstance(task, str) or not _TASK.fullmatch(task) or len(task) > MAX_TASK:
        raise RecurringDeclarationError(
            f"not a task name: {task!r} (1-{MAX_TASK} letters, digits, . _ : -)")
    where = f"recurring task {task!r}"
    if not isinstance(cron, str):
        raise RecurringDeclarationError(f"{where}: cron must be a string, got {cron!r}")
    if timezone is not None and not isinstance(timezone, str):
        raise RecurringDeclarationError(f"{where}: timezone must be a name or None")
    try:
        trigger_for(cron, timezone or "UTC")
    except InvalidSchedule as exc:
        raise RecurringDeclarationError(f"{where}: {exc}") from None
    if misfire not in MISFIRE_POLICIES:
        raise RecurringDeclarationError(
            f"{where}: misfire must be one of {', '.join(MISFIRE_POLICIES)}, got {misfire!r}")
    if not _int(catch_up_max) or catch_up_max < 1:
        raise RecurringDeclarationError(
            f"{where}: catch_up_max must be an int >= 1, got {catch_up_max!r}")
    if not _int(grace_seconds) or grace_seconds < 0:
        raise RecurringDeclarationError(
            f"{where}: grace_seconds must be an int >= 0, got {grace_seconds!r}")
    args = dict(args or {})
    if not all(isinstance(key, str) for key in args) or "slot" in args:
        raise RecurringDeclarationError(
            f"{where}: args must be keyword arguments by name, without 'slot' (the scheduler "
            "passes the slot itself)")
    try:
        json.dumps(args)
    except (TypeError, ValueError) as exc:
        raise RecurringDeclarationError(f"{where}: args must be JSON: {exc}") from None
    return RecurringTask(task, actor_name, cron, timezone, misfire, catch_up_max,
                         grace_seconds, args, description)


def unknown_actor_message(actor_name: str, known: Collection[str]) -> str:
    """Why an actor name cannot be scheduled, with the nearest registered names."""
    close = difflib.get_close_matches(actor_name, sorted(known), n=3, cutoff=0.8)  # typos
    hint = f", did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    # No ';' here: the scheduler joins its problems with '; ' in scheduler.health.errors.
    return (f"actor {actor_name!r} is not registered (declare it with @job in a module "
            f"listed in JOBS_MODULES){hint}")


def _resolve(where: str, actor: Any) -> Any:
    """The registered actor ``actor`` names (an actor object or its name)."""
    from dramatiq import Actor
    from dramatiq.errors import ActorNotFound

    from app.jobs.setup import configure

    broker = configure()
    if isinstance(actor, Actor):
        name = actor.actor_name
    elif isinstance(actor, str):
        name = actor
    else:
        raise RecurringDeclarationError(f"{where}: actor must be an actor or its name, got "
                                        f"{actor!r}")
    try:
        registered = broker.get_actor(name)
    except ActorNotFound:
        raise RecurringDeclarationError(
            f"{where}: {unknown_actor_message(name, broker.get_declared_actors())}") from None
    if isinstance(actor, Actor) and registered is not actor:
        raise RecurringDeclarationError(f"{where}: actor {name!r} is bound to another broker")
    return registered


def recurring(
    *, task: str, actor: Any, cron: str, timezone: str | None = None,
    misfire: str = "run_once", catch_up_max: int = 1, grace_seconds: int = 60,
    args: Mapping[str, Any] | None = None, description: str | None = None,
) -> RecurringTask:
    """Declare a recurring task: ``actor`` fires for every active tenant on ``cron``.

    ``actor``: the actor (or its registered name), called as ``actor(slot=<ISO 8601 UTC>,
    **args)``. ``cron``: 5 fields, or 6 with seconds first. ``timezone``: an IANA name, or
    None for each tenant's own. ``misfire`` after downtime: ``skip`` (unless within
    ``grace_seconds``), ``run_once``, or ``catch_up`` (the last ``catch_up_max`` slots).
    Declaring the same task again with the same definition is a no-op.
    """
    where = f"recurring task {task!r}"
    registered = _resolve(where, actor)
    declared = check_definition(
        task, registered.actor_name, cron, timezone, misfire=misfire,
        catch_up_max=catch_up_max, grace_seconds=grace_seconds, args=args,
        description=description)
    try:
        inspect.signature(registered.fn).bind(slot="", **declared.args)
    except TypeError as exc:
        raise RecurringDeclarationError(
            f"{where}: actor {registered.actor_name!r} cannot be called with slot= and args "
            f"{sorted(declared.args)}: {exc}") from None
    existing = DECLARED.get(task)
    if existing is not None and existing != declared:
        raise RecurringDeclarationError(f"{where} is already declared differently "
                                        f"({existing}); declare it once")
    DECLARED[task] = declared
    return declared


def write_declared(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Write every declared task to ``scheduler.recurring`` (owner connection), in one
    transaction; returns what happened to each: inserted, updated or unchanged."""
    outcome: dict[str, str] = {}
    with conn.transaction():
        for declared in DECLARED.values():
            row = conn.execute(queries.UPSERT_DECLARED, declared.row()).fetchone()
            outcome[declared.task] = ("unchanged" if row is None
                                      else "inserted" if row[0] else "updated")
    for task, what in outcome.items():
        level = logging.DEBUG if what == "unchanged" else logging.INFO
        logger.log(level, "event=recurring_declared task=%s outcome=%s", task, what)
    return outcome
