"""What an actor's ``on_failure`` hook is told about a failed attempt.

``@job(..., on_failure=record_failure)`` runs ``record_failure(session, attempt)`` after an
attempt fails and its transaction has rolled back, in a new transaction of the job's tenant
that commits on its own: the way to leave a durable trace of the failure in tenant data (a
webhook event marked FAILED with its error) while the job itself is retried or dead-lettered.
A hook that raises is logged and ignored: it never changes the job's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def describe(exc: BaseException) -> str:
    """An error as ``Type: message`` for ``last_error``, logs and hooks, never input values.

    Some errors print the data they were given: pydantic's ValidationError every refused
    input value, SQLAlchemy's the statement's parameters, PostgreSQL's DETAIL the values of
    a violated key. A payload may hold personal data or secrets, so only each validation
    error's location and message, and a database error's primary message, are kept.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException) and hasattr(exc, "statement"):
        exc = orig  # SQLAlchemy's wrapper: the driver's error, without the parameters
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary is not None:
        state = getattr(exc, "sqlstate", None)
        return f"{type(exc).__name__}: {primary} (SQLSTATE {state})"[:4000]
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        try:
            parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                     for e in errors(include_input=False, include_url=False)]
            return f"ValidationError: {'; '.join(parts)}"[:4000]
        except TypeError:
            pass
    return f"{type(exc).__name__}: {exc}"[:4000]


@dataclass(frozen=True)
class FailedAttempt:
    message_id: str
    actor_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempt: int
    max_attempts: int | None
    #: ``Type: message`` of the exception (see :func:`describe`).
    error: str
    #: True when no retry follows (attempts used up, or an exception listed in ``throws``).
    final: bool
