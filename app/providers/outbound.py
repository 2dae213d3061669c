"""The outbound-message interface every channel adapter (email, SMS, WhatsApp) implements.

An adapter sends one rendered message and classifies what went wrong: a
``TransientProviderError`` is worth retrying (timeouts, connection errors, 5xx, 429 with its
``Retry-After``), a ``PermanentProviderError`` never is (invalid number, unsubscribed,
refused credentials). ``maybe_sent`` says whether the provider may have accepted the message
despite the error (a timeout after the request went out): the caller must then reconcile
before sending again, so a message is never sent twice.

How an adapter reconciles is its ``reconcile`` mode: ``lookup`` (it can ask the provider
what happened to an idempotency key), ``dedupe`` (the provider itself drops a second request
with the same ``Idempotency-Key``, so sending again is safe), or ``none`` (it cannot tell:
the caller leaves the delivery ``unknown`` instead of sending blindly).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

Channel = Literal["email", "sms", "whatsapp"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "whatsapp")


class Reconcile(StrEnum):
    LOOKUP = "lookup"
    DEDUPE = "dedupe"
    NONE = "none"


@dataclass(frozen=True)
class OutboundMessage:
    channel: Channel
    recipient: str
    text: str
    #: Stable across every attempt of one delivery; sent to providers that accept one.
    idempotency_key: str
    subject: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str
    #: The provider recognised the idempotency key: nothing was sent this time.
    replayed: bool = False


class ProviderError(Exception):
    """A provider call failed; ``reason`` is the provider's own words (no secrets)."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class TransientProviderError(ProviderError):
    """Worth retrying: after ``retry_after`` seconds when the provider said so."""

    def __init__(
        self, provider: str, reason: str, *, retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(provider, reason)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class PermanentProviderError(ProviderError):
    """The provider refused the message for good: retrying cannot help."""


class OutboundProvider(Protocol):
    #: The adapter kind as stored in ``messaging_providers.provider``.
    name: str
    reconcile: Reconcile

    def send(self, message: OutboundMessage) -> Accepted:
        """Send ``message`` once; raise a ``ProviderError`` subclass on failure."""
        ...

    def lookup(self, idempotency_key: str) -> Accepted | None:
        """What the provider knows of ``idempotency_key`` (``reconcile == lookup`` only)."""
        ...
