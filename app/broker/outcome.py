"""What became of one attempt: one explicit value.

The job layer decides it once, when the actor returns or raises (``app.jobs.outcome``);
the consumer's ack applies it to the job row (``PostgresJobsBroker.apply_outcome``).
Nothing else sets flags on the message, so the order of middleware never changes an
outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Completed:
    """Done. ``in_transaction``: the completion already committed with the actor's writes;
    otherwise it is group-committed with ``result``."""

    result: Any = None
    in_transaction: bool = False


@dataclass(frozen=True)
class RetryLater:
    delay: float
    error: str


@dataclass(frozen=True)
class Dead:
    error: str


@dataclass(frozen=True)
class LeaseLost:
    """The job was rescued while this attempt ran: another attempt owns it, nothing is done."""


@dataclass(frozen=True)
class HandBack:
    """Back to the queue unstarted, the attempt not counted (e.g. a rate-limited job that
    could not start right after its claim)."""

    reason: str


Outcome = Completed | RetryLater | Dead | LeaseLost | HandBack
