"""Deliver one message at most once: render, record the attempt, reconcile, send, classify.

The order is what makes "never sent twice" hold across crashes:

1. render the template and find the tenant's provider (in the job's transaction);
2. record the attempt in a transaction that commits at once (``record``: the job context's
   ``separate_session``), so it survives this attempt dying;
3. if an earlier attempt was already ``sending``, it may have been accepted: ask the
   provider (``lookup``), or rely on it dropping a repeated key (``dedupe``), or stop and
   leave the delivery ``unknown`` (``none``), never sending blindly;
4. send with the idempotency key and record the outcome at once.

Failures come out as ``DeliveryDeferred`` (retry, with the provider's ``Retry-After``) or
``DeliveryFailed`` (permanent, with the provider's reason); the recipient is scrubbed from
both, as they are logged.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.db.tenant import TENANT_KEY
from app.messaging import channels, deliveries, templates
from app.messaging.deliveries import Target
from app.messaging.errors import DeliveryDeferred, DeliveryFailed, scrub
from app.messaging.settings import MessagingSettings
from app.providers.outbound import (
    Accepted,
    OutboundMessage,
    OutboundProvider,
    PermanentProviderError,
    Reconcile,
    TransientProviderError,
)

logger = logging.getLogger(__name__)

#: Opens a short transaction of the job's tenant that commits on exit.
RecordSession = Callable[[], contextlib.AbstractContextManager[Session]]


@dataclass(frozen=True)
class Request:
    channel: str
    recipient: str
    template: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    delivery_id: uuid.UUID
    status: str
    provider: str
    provider_message_id: str
    #: How this attempt settled it: sent, already_sent, reconciled, replayed.
    how: str

    def as_result(self) -> dict[str, str]:
        return {"delivery_id": str(self.delivery_id), "status": self.status,
                "provider": self.provider, "provider_message_id": self.provider_message_id,
                "how": self.how}


def deliver(
    session: Session, request: Request, *, key: str, job_id: uuid.UUID | None,
    record: RecordSession, config: MessagingSettings,
) -> Outcome:
    """Send ``request`` at most once for ``key`` (see the module docstring)."""
    target = Target(request.channel, request.recipient, request.template)
    try:
        template = templates.find_template(session, request.template)
        rendered = templates.render(template, request.params, request.channel)
        provider = channels.provider_for(session, request.channel, config)
    except (templates.TemplateError, channels.ProviderNotConfigured) as exc:
        raise DeliveryFailed(str(exc)) from None
    with record() as s:
        attempt = deliveries.begin(s, key, job_id, target, provider.name)
    log = {"delivery": attempt.delivery_id, "job": job_id,
           "tenant": session.info.get(TENANT_KEY), "channel": request.channel,
           "provider": provider.name, "attempt": attempt.attempts}
    if attempt.previous == "sent":
        _log("delivery_already_sent", log)
        return Outcome(attempt.delivery_id, "sent", provider.name,
                       attempt.provider_message_id or "", "already_sent")
    if attempt.previous == "unknown":
        raise DeliveryFailed(f"delivery {attempt.delivery_id} may have been sent already "
                             "and is not sent again until resolved (resolve_unknown)")
    if attempt.previous == "sending":
        found = _reconcile(provider, key, attempt, record, request.recipient, log)
        if found is not None:
            return found
    message = OutboundMessage(
        channel=request.channel,  # type: ignore[arg-type]
        recipient=request.recipient, text=rendered.text, idempotency_key=key,
        subject=rendered.subject, html=rendered.html,
    )
    accepted = _send(provider, message, attempt, record, config, log)
    how = "replayed" if accepted.replayed else "sent"
    with record() as s:
        deliveries.sent(s, attempt.delivery_id, provider.name, accepted.provider_message_id,
                        "the provider already had this key" if accepted.replayed else None)
    _log("delivery_sent", {**log, "how": how})
    return Outcome(attempt.delivery_id, "sent", provider.name, accepted.provider_message_id,
                   how)


def _reconcile(
    provider: OutboundProvider, key: str, attempt: deliveries.Attempt, record: RecordSession,
    recipient: str, log: dict[str, Any],
) -> Outcome | None:
    """An earlier attempt was cut off mid-send: find out, or stop. None: safe to send."""
    if provider.reconcile is Reconcile.DEDUPE:
        _log("delivery_resend_deduplicated", log)
        return None  # the provider drops the repeated key: sending again cannot duplicate
    if provider.reconcile is Reconcile.NONE:
        reason = (f"delivery {attempt.delivery_id}: an earlier attempt may have sent it and "
                  f"{provider.name} cannot be asked; not sent again (resolve_unknown)")
        with record() as s:
            deliveries.unknown(s, attempt.delivery_id, reason)
        _log("delivery_unknown", log, logging.WARNING)
        raise DeliveryFailed(reason)
    try:
        found = provider.lookup(key)
    except TransientProviderError as exc:
        raise DeliveryDeferred(scrub(str(exc), recipient), delay=exc.retry_after) from None
    except PermanentProviderError as exc:
        raise DeliveryFailed(f"cannot reconcile: {scrub(str(exc), recipient)}") from None
    if found is None:
        _log("delivery_reconciled", {**log, "found": False})
        return None
    with record() as s:
        deliveries.sent(s, attempt.delivery_id, provider.name, found.provider_message_id,
                        "reconciled: the provider had accepted an earlier attempt")
    _log("delivery_reconciled", {**log, "found": True})
    return Outcome(attempt.delivery_id, "sent", provider.name, found.provider_message_id,
                   "reconciled")


def _send(
    provider: OutboundProvider, message: OutboundMessage, attempt: deliveries.Attempt,
    record: RecordSession, config: MessagingSettings, log: dict[str, Any],
) -> Accepted:
    try:
        return provider.send(message)
    except TransientProviderError as exc:
        reason = scrub(str(exc), message.recipient)
        with record() as s:
            if exc.maybe_sent:
                deliveries.unsure(s, attempt.delivery_id, reason)
            else:
                deliveries.retrying(s, attempt.delivery_id, reason)
        delay = None if exc.retry_after is None else min(exc.retry_after,
                                                         config.max_retry_after)
        _log("delivery_deferred", {**log, "maybe_sent": exc.maybe_sent, "delay": delay},
             logging.WARNING)
        raise DeliveryDeferred(reason, delay=delay) from None
    except PermanentProviderError as exc:
        reason = scrub(str(exc), message.recipient)
        with record() as s:
            deliveries.failed(s, attempt.delivery_id, reason)
        _log("delivery_refused", log, logging.WARNING)
        raise DeliveryFailed(reason) from None


def _log(event: str, fields: dict[str, Any], level: int = logging.INFO) -> None:
    logger.log(level, "event=%s %s", event, " ".join(f"{k}={v}" for k, v in fields.items()))
