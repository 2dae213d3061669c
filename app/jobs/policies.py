"""Queue policies from the plans: attempts, backoff, retention. One place to read them.

An actor takes its queue's policy unless it overrides a field in its own options.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.broker.limits import Limits


@dataclass(frozen=True)
class QueuePolicy:
    max_attempts: int = 3
    #: First retry delay in milliseconds; doubles each attempt (dramatiq's unit).
    min_backoff: int = 1_000
    max_backoff: int = 3_600_000
    #: Seconds a finished unique job keeps its key (duplicates stay no-ops meanwhile).
    unique_window: float = 0.0
    completed_max_age: float = 24 * 3600
    completed_max_count: int = 1000
    failed_max_age: float = 7 * 24 * 3600
    failed_max_count: int | None = None
    #: Rate, concurrency and fairness for the queue's claims (app/jobs/limits.py).
    limits: Limits | None = None


QUEUES: dict[str, QueuePolicy] = {
    # 000: webhooks, scheduled and notifications share 5 attempts from 1 s, 24 h / 1000
    # completed, 7 days failed; activity: 3 attempts, 1 h / 500 completed.
    "webhooks": QueuePolicy(max_attempts=5),
    "notifications": QueuePolicy(max_attempts=5),
    "scheduled": QueuePolicy(max_attempts=5),
    "activity": QueuePolicy(max_attempts=3, completed_max_age=3600, completed_max_count=500),
    # 001: scheduled messages and reminders, 3 from 1 s, keep 100 completed / 500 failed.
    "messages": QueuePolicy(max_attempts=3, completed_max_count=100, failed_max_count=500),
    "reminders": QueuePolicy(max_attempts=3, completed_max_count=100, failed_max_count=500),
    # 003: AI responses, 3 from 2 s; 10 starts/s and 5 running per workspace (tenant).
    "ai": QueuePolicy(
        max_attempts=3, min_backoff=2_000, limits=Limits(rate=(10, 1.0), concurrency=5)
    ),
    # 004: commerce. Completed kept 24 h (last 1000), failed 7 days; retries 3-5 with
    # exponential backoff. Syncs run one at a time per channel (their actors' limit_key is
    # the channel id); webhook processing runs at high priority (its actor's priority).
    "shopify-sync": QueuePolicy(max_attempts=3, min_backoff=5_000,
                                limits=Limits(concurrency=1)),
    "woocommerce-sync": QueuePolicy(max_attempts=3, min_backoff=5_000,
                                    limits=Limits(concurrency=1)),
    "channel-sync": QueuePolicy(max_attempts=3, min_backoff=5_000),
    "webhook-processing": QueuePolicy(max_attempts=5),
    "shipment-create": QueuePolicy(max_attempts=5, min_backoff=2_000),
    "shipment-tracking": QueuePolicy(max_attempts=3, min_backoff=5_000),
}

DEFAULT_POLICY = QueuePolicy()


def policy_for(queue_name: str) -> QueuePolicy:
    return QUEUES.get(queue_name, DEFAULT_POLICY)


def max_attempts_for(actor_options: dict[str, object], default: int) -> int:
    """An actor's attempts: ``max_attempts``, else dramatiq's ``max_retries`` + 1, else default."""
    if "max_attempts" in actor_options:
        return int(actor_options["max_attempts"])  # type: ignore[call-overload]
    if "max_retries" in actor_options:
        return int(actor_options["max_retries"]) + 1  # type: ignore[call-overload]
    return default


def backoff_seconds(attempt: int, min_backoff_ms: int, max_backoff_ms: int) -> float:
    """Exponential backoff after ``attempt`` (1-based) failed: min, 2*min, 4*min, ..."""
    return min(max_backoff_ms, min_backoff_ms * 2 ** (attempt - 1)) / 1000
