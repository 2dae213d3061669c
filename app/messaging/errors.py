"""Errors of the messaging services, and how they are told to operators (no input values)."""

from __future__ import annotations

from pydantic import ValidationError


class DeliveryFailed(Exception):
    """Permanent: the message cannot be sent as asked (bad template, refused recipient,
    no provider, an outcome that cannot be known). The job goes to the dead letters."""


class DeliveryDeferred(Exception):
    """Transient: try again later, after ``delay`` seconds when the provider said so."""

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class TooLate(RuntimeError):
    """A scheduled message or reminder is already being sent (or was): it cannot change."""


def validation_summary(exc: ValidationError) -> str:
    """pydantic's errors as ``field: message``, without the offending input values."""
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg')}"
                     for e in exc.errors(include_input=False, include_url=False))


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with each of ``secrets`` (a recipient, a token) replaced: reasons from a
    provider may quote the recipient, and errors end up in logs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
