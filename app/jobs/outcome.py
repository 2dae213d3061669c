"""Deciding what becomes of an attempt (the values are in ``app.broker.outcome``).

The lifecycle middleware decides once, when the actor returns or raises (after committing
or rolling back the job's transaction); the consumer's ack applies the value to the row.
"""

from __future__ import annotations

import json
import math
from typing import Any

from dramatiq.errors import Retry

from app.broker.outcome import Completed, Dead, HandBack, LeaseLost, Outcome, RetryLater
from app.jobs.errors import PoisonValue, TenantUnavailable
from app.jobs.hooks import describe
from app.jobs.policies import backoff_seconds, max_attempts_for, policy_for

__all__ = [
    "Completed", "Dead", "HandBack", "LeaseLost", "Outcome", "RetryLater", "after_failure",
    "check_json", "check_number", "check_text",
]


def check_json(value: Any, what: str) -> None:
    """Raise ``PoisonValue`` if PostgreSQL's jsonb would refuse ``value``.

    NaN and infinities (not JSON), a NUL character (jsonb has none) and objects JSON
    cannot encode would otherwise fail the statement that stores them, again and again.
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PoisonValue(f"{what} cannot be stored as JSON: {exc}") from None
    if "\\u0000" in text:
        raise PoisonValue(f"{what} contains a NUL character, which PostgreSQL cannot store")


def check_text(value: str, what: str) -> None:
    if "\x00" in value:
        raise PoisonValue(f"{what} contains a NUL character, which PostgreSQL cannot store")


def check_number(value: float, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise PoisonValue(f"{what} must be a finite number, got {value!r}")


def after_failure(
    actor_options: dict[str, Any], queue: str, attempt: int, max_attempts: int | None,
    exc: BaseException,
) -> RetryLater | Dead:
    """Retry with backoff while attempts last, unless the error says retrying cannot help."""
    policy = policy_for(queue)
    error = describe(exc)
    throws = actor_options.get("throws")
    if isinstance(exc, TenantUnavailable | PoisonValue) or (throws and isinstance(exc, throws)):
        return Dead(error)
    retry_when = actor_options.get("retry_when")
    if retry_when is not None:
        retry = bool(retry_when(attempt - 1, exc))
    else:
        retry = attempt < max_attempts_for(actor_options, max_attempts or policy.max_attempts)
    if not retry:
        return Dead(error)
    if isinstance(exc, Retry) and exc.delay is not None:
        delay = exc.delay / 1000
    else:
        delay = backoff_seconds(attempt, actor_options.get("min_backoff", policy.min_backoff),
                                actor_options.get("max_backoff", policy.max_backoff))
    return RetryLater(delay, error)
