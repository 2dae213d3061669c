"""Actor declarations: every option our jobs accept, checked when the actor is declared.

dramatiq refuses an actor option no middleware declares, so a typo fails at import. This
middleware declares ours and checks their values there too: limits are merged with the
queue's policy and registered with the broker (whose consumers then claim that queue
through the limited claim); a malformed or conflicting limit, or an ``on_failure`` that is
not a function, stops the process at import. At worker boot it keys waiting jobs that were
enqueued before their queue had limits, so none is left behind unclaimable.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import dramatiq
from dramatiq import Middleware

from app.broker.broker import PostgresJobsBroker
from app.broker.limits import Limits
from app.jobs import limits as declared
from app.jobs.policies import policy_for
from app.store import claim

logger = logging.getLogger(__name__)

#: Options of ours (besides the limits): tenant mode, priority, unique window, retries,
#: the failure hook.
OPTIONS = {
    "tenant_free", "job_priority", "unique_window",
    "max_attempts", "max_retries", "min_backoff", "max_backoff", "retry_when", "throws",
    "on_failure",
}


class JobDeclarations(Middleware):
    actor_options: ClassVar[set[str]] = OPTIONS | declared.ACTOR_OPTIONS

    def before_declare_actor(self, broker: PostgresJobsBroker, actor: dramatiq.Actor) -> None:
        hook = actor.options.get("on_failure")
        if hook is not None and not callable(hook):
            raise TypeError(
                f"actor {actor.actor_name!r}: on_failure must be a function (session, "
                f"FailedAttempt) called after a failed attempt, got {hook!r} (dramatiq's "
                "callback actors are not supported: enqueue follow-up jobs in the actor)")
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

    def before_worker_boot(self, broker: PostgresJobsBroker, worker: Any) -> None:
        queues = sorted(q for q in broker.get_declared_queues() if q in broker.queue_limits)
        if not queues:
            return
        with broker.jobs_pool.connection() as conn:
            keyed = claim.backfill_keys(conn, queues)
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
