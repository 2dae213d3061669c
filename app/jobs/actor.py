"""The ``job`` decorator: a dramatiq actor with an explicit name, queue, tenant mode and policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq


def job(
    *,
    actor_name: str,
    queue_name: str,
    tenant_free: bool = False,
    priority: int = 0,
    **options: Any,
) -> Callable[[Callable[..., Any]], dramatiq.Actor]:
    """Declare an actor. ``priority``: higher is claimed first within its queue.

    Other options (``max_attempts``, ``min_backoff``, ``time_limit``...) are dramatiq actor
    options; the broker's middleware rejects unknown ones at import time.
    """

    def decorate(fn: Callable[..., Any]) -> dramatiq.Actor:
        return dramatiq.actor(
            fn,
            actor_name=actor_name,
            queue_name=queue_name,
            tenant_free=tenant_free,
            job_priority=priority,
            **options,
        )

    return decorate
