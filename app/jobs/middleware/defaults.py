"""Enqueue-time defaults and checks: tenant, priority, attempts, unique window.

Runs for every enqueue path (``enqueue(session, ...)``, ``actor.send()``, pipelines), so a
job row always carries what its worker and the rescuer need to know.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dramatiq import Message, Middleware
from dramatiq.errors import ActorNotFound

from app.db.tenant import parse_tenant
from app.jobs.context import current_job
from app.jobs.errors import EnqueueRefused
from app.jobs.policies import max_attempts_for, policy_for


class JobDefaults(Middleware):
    actor_options: ClassVar[set[str]] = {"tenant_free", "job_priority", "unique_window"}

    def before_enqueue(self, broker: Any, message: Message, delay: int | None) -> None:
        options = message.options
        try:
            actor = broker.get_actor(message.actor_name)
        except ActorNotFound:
            actor = None  # another service's actor: the worker that lacks it dead-letters it
        actor_options = actor.options if actor else {}
        if options.get("tenant_id") is None:
            ctx = current_job()
            if ctx is not None and ctx.tenant_id is not None:
                options["tenant_id"] = str(ctx.tenant_id)
            elif actor is not None and not actor_options.get("tenant_free", False):
                raise EnqueueRefused(
                    f"actor {message.actor_name!r} needs a tenant: enqueue it inside a "
                    "tenant_session(...), pass tenant_id=..., or declare it tenant_free=True"
                )
        else:
            try:
                options["tenant_id"] = str(parse_tenant(options["tenant_id"]))
            except ValueError as exc:
                raise EnqueueRefused(str(exc)) from None
        policy = policy_for(message.queue_name)
        options.setdefault("priority", actor_options.get("job_priority", 0))
        options.setdefault("max_attempts", max_attempts_for(actor_options, policy.max_attempts))
        if options.get("unique_key") is not None:
            options.setdefault(
                "unique_window", actor_options.get("unique_window", policy.unique_window)
            )

