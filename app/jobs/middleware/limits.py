"""Limits middleware: accept the limit options, check them at import, key each job.

At actor declaration it merges the actor's limits with its queue's policy and registers
them with the broker (whose consumers then claim that queue through the limited claim); a
malformed or conflicting limit raises there, so the process does not start. At enqueue it
gives every job of a limited queue its ``limit_key``. At worker boot it keys waiting jobs
that were enqueued before their queue had limits, so none is left behind unclaimable.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import dramatiq
from dramatiq import Message, Middleware
from dramatiq.errors import ActorNotFound

from app.broker.broker import PostgresJobsBroker
from app.broker.limits import Limits, backfill_keys
from app.jobs import limits as declared
from app.jobs.policies import policy_for

logger = logging.getLogger(__name__)


class JobLimits(Middleware):
    actor_options: ClassVar[set[str]] = declared.ACTOR_OPTIONS

    def before_declare_actor(self, broker: PostgresJobsBroker, actor: dramatiq.Actor) -> None:
        queue = actor.queue_name
        registry: dict[str, Limits] = broker.queue_limits
        current = registry.get(queue)
        if current is None:
            policy_limits = policy_for(queue).limits
            current = Limits()
            if policy_limits is not None:
                current = declared.merge(
                    queue, current, _fields(policy_limits), f"the policy of queue {queue!r}"
                )
        mine = declared.from_options(actor.actor_name, actor.options)
        limits = declared.merge(queue, current, mine, f"actor {actor.actor_name!r}")
        if limits.active:
            registry[queue] = limits

    def before_enqueue(self, broker: PostgresJobsBroker, message: Message, delay: Any) -> None:
        limits = broker.queue_limits.get(message.queue_name)
        if limits is None:
            message.options.pop("limit_key", None)  # nothing claims by key on this queue
            return
        try:
            actor_options = broker.get_actor(message.actor_name).options
        except ActorNotFound:
            actor_options = {}
        message.options["limit_key"] = declared.key_for(message, actor_options)

    def before_worker_boot(self, broker: PostgresJobsBroker, worker: Any) -> None:
        queues = sorted(q for q in broker.get_declared_queues() if q in broker.queue_limits)
        if not queues:
            return
        with broker.jobs_pool.connection() as conn:
            keyed = backfill_keys(conn, queues)
        for queue in queues:
            logger.info("event=limits queue=%s limits=%r", queue, broker.queue_limits[queue])
        if keyed:
            logger.info("event=limit_keys_backfilled queues=%s jobs=%s", ",".join(queues), keyed)


def _fields(limits: Limits) -> dict[str, Any]:
    """The fields a policy sets (those that differ from the defaults)."""
    default = Limits()
    return {
        name: getattr(limits, name)
        for name in Limits.__dataclass_fields__
        if getattr(limits, name) != getattr(default, name)
    }
