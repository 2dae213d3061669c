"""Queue policies: attempts, backoff, retention, limits, default priority. Declared in code.

``declare_queue("shopify-sync", max_attempts=5, completed_max_age=86400, ...)`` declares a
queue's whole policy, checked at once (a bad value or a second, different declaration
fails at import, as actor options do). Declare a queue before the actors that use it; an
actor takes its queue's policy unless it overrides a field in its own options. A queue
nobody declared gets ``DEFAULT_POLICY``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from app.broker.limits import Limits, Rate


@dataclass(frozen=True)
class QueuePolicy:
    max_attempts: int = 3
    #: First retry delay in milliseconds; doubles each attempt (dramatiq's unit).
    min_backoff: int = 1_000
    max_backoff: int = 3_600_000
    #: Seconds a finished unique job keeps its key (duplicates stay no-ops meanwhile).
    unique_window: float = 0.0
    #: Finished jobs kept: at most this old (seconds) and this many (None: no limit).
    completed_max_age: float | None = 24 * 3600
    completed_max_count: int | None = 1000
    failed_max_age: float | None = 7 * 24 * 3600
    failed_max_count: int | None = None
    #: Rate, concurrency and fairness for the queue's claims (app/jobs/limits.py).
    limits: Limits | None = None
    #: Priority of the queue's jobs when neither the actor nor the caller gives one.
    priority: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_attempts", "min_backoff", "max_backoff"):
            value = getattr(self, name)
            if not _int(value) or value < (1 if name == "max_attempts" else 0):
                problems.append(f"{name} must be a positive int, got {value!r}")
        if _int(self.max_attempts) and self.max_attempts > 1000:
            problems.append(f"max_attempts must be at most 1000, got {self.max_attempts!r}")
        for name in ("unique_window", "completed_max_age", "failed_max_age"):
            value = getattr(self, name)
            if value is None and name != "unique_window":
                continue
            if not _number(value) or value < 0:
                problems.append(f"{name} must be a number of seconds >= 0, got {value!r}")
        for name in ("completed_max_count", "failed_max_count"):
            value = getattr(self, name)
            if value is not None and (not _int(value) or value < 0):
                problems.append(f"{name} must be an int >= 0 or None, got {value!r}")
        if not _int(self.priority) or not -32768 <= self.priority <= 32767:
            problems.append(f"priority must be an int from -32768 to 32767, got "
                            f"{self.priority!r}")
        if self.limits is not None and not isinstance(self.limits, Limits):
            problems.append(f"limits must be a Limits, got {self.limits!r}")
        if problems:
            raise ValueError("; ".join(problems))


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: Every declared queue's policy, by name.
QUEUES: dict[str, QueuePolicy] = {}

DEFAULT_POLICY = QueuePolicy()


class QueueDeclarationError(ValueError):
    """A queue declared with bad values, twice differently, or after its actors."""


def declare_queue(
    name: str,
    *,
    rate_limit: Rate | None = None,
    concurrency: int | None = None,
    queue_rate_limit: Rate | None = None,
    queue_concurrency: int | None = None,
    fair: bool = False,
    rate_margin: float | None = None,
    **policy: object,
) -> QueuePolicy:
    """Declare queue ``name`` with its whole policy (see ``QueuePolicy`` for the fields).

    ``rate_limit=(n, seconds)`` and ``concurrency=n`` apply per limit key (by default the
    job's tenant), ``queue_rate_limit`` / ``queue_concurrency`` to the whole queue,
    ``fair=True`` serves the keys round-robin; ``rate_margin`` (seconds) widens the rate
    windows beyond the broker's 0.05 s, for providers that count strictly what arrives.
    Declaring the same policy again is a no-op.
    """
    unknown = sorted(set(policy) - {f.name for f in fields(QueuePolicy)} - {"limits"})
    if unknown:
        raise QueueDeclarationError(f"queue {name!r}: unknown policy field {unknown[0]!r} "
                                    f"(known: {', '.join(f.name for f in fields(QueuePolicy))})")
    if not isinstance(name, str) or not name or name.endswith(".DQ") or not all(
        ch.isalnum() or ch in "._-" for ch in name
    ) or not (name[0].isalpha() or name[0] == "_"):
        raise QueueDeclarationError(f"not a queue name: {name!r} (letters, digits, . _ -)")
    try:
        limits = Limits(rate=_rate(rate_limit), concurrency=concurrency,
                        queue_rate=_rate(queue_rate_limit), queue_concurrency=queue_concurrency,
                        fair=fair, rate_margin=rate_margin)
        declared = QueuePolicy(limits=limits if limits.active else None, **policy)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise QueueDeclarationError(f"queue {name!r}: {exc}") from None
    existing = QUEUES.get(name)
    if existing is not None and existing != declared:
        raise QueueDeclarationError(f"queue {name!r} is already declared with another policy "
                                    f"({existing}); declare it once")
    _refuse_if_in_use(name)
    QUEUES[name] = declared
    return declared


def _rate(value: object) -> Rate | None:
    """Accept ``[10, 1.0]`` as well as ``(10, 1.0)`` (e.g. from JSON settings)."""
    return tuple(value) if isinstance(value, list) else value  # type: ignore[return-value]


def _refuse_if_in_use(name: str) -> None:
    from dramatiq import broker as broker_module

    broker = broker_module.global_broker
    if name in QUEUES or broker is None:
        return
    users = sorted(a.actor_name for a in broker.actors.values() if a.queue_name == name)
    if users:
        raise QueueDeclarationError(f"declare queue {name!r} before its actors "
                                    f"({', '.join(users)}): they took the default policy")


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
