"""``POST /slack/events`` and ``/slack/interactivity``: Slack's Events API and interactivity.

Verification: ``X-Slack-Signature`` (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``) with
the tenant's signing secret, and ``X-Slack-Request-Timestamp`` within 5 minutes (a replay
is refused). The tenant comes from the body's team id, which only counts once that tenant's
own secret verifies the signature, or from the endpoint token in ``/slack/events/{token}``
(``url_verification`` carries no team id, so a Slack app is set up with the token URL).

The extension point for the Slack families is :func:`register_slack_handler`: a handler for
an event type (``app_mention``, ``message``...) or an interactivity type (``block_actions``,
``message_action``, ``shortcut``...) is called as ``handler(session, event)`` inside the
intake's tenant transaction, right after the event row is stored, and enqueues its jobs
with ``enqueue(session, ...)``; they commit with the row. Kinds without a handler are stored
and processed by ``webhooks.process``. Slack's retries of an event are duplicates (200).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.intake import signatures
from app.intake.body import form_payload, json_object, media_type, read_limited
from app.intake.credentials import Credentials
from app.intake.errors import UNAVAILABLE, unavailable
from app.intake.metrics import observe
from app.intake.refusals import Refusal, refuse
from app.intake.sources import FORM, JSON
from app.intake.state import IntakeState, state_of
from app.intake.store import Stored, store, store_failed
from app.intake.webhooks import kept_headers
from app.jobs.hooks import describe
from app.services.webhook_events import NewEvent

logger = logging.getLogger("app.intake")


class SlackEvent(BaseModel):
    """What a Slack handler is given: who, which event, and Slack's parsed payload."""

    model_config = ConfigDict(frozen=True)

    tenant_id: uuid.UUID
    team_id: str
    event_id: str
    kind: str
    payload: dict[str, Any]
    webhook_event_id: uuid.UUID


SlackHandler = Callable[[Session, SlackEvent], None]
SLACK_HANDLERS: dict[str, SlackHandler] = {}


def register_slack_handler(kind: str) -> Callable[[SlackHandler], SlackHandler]:
    """Decorator: ``handler(session, event)`` handles Slack events of ``kind``."""
    if not kind or not kind.replace("_", "").isalnum():
        raise ValueError(f"a Slack event kind is a type name such as 'app_mention', got {kind!r}")

    def decorate(handler: SlackHandler) -> SlackHandler:
        if kind in SLACK_HANDLERS and SLACK_HANDLERS[kind] is not handler:
            raise ValueError(f"Slack kind {kind!r} already has a handler "
                             f"({SLACK_HANDLERS[kind].__qualname__})")
        SLACK_HANDLERS[kind] = handler
        return handler

    return decorate


async def events(request: Request) -> Response:
    started = time.perf_counter()
    state = state_of(request)
    try:
        response = await _receive(request, state)
    except Refusal as refusal:
        response = refuse("slack", refusal)
    except UNAVAILABLE:
        response = refuse("slack", unavailable(state.settings.retry_after_seconds))
    observe("slack", response.status_code, time.perf_counter() - started)
    return response


def _kind_and_ids(payload: dict[str, Any], body: bytes) -> tuple[str, str | None, str | None]:
    """(kind, team id, event id) of an Events API callback or an interactivity payload."""
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        raise Refusal(400, "malformed_body", "Slack payload has no 'type'")
    team = payload.get("team_id")
    if team is None and isinstance(payload.get("team"), dict):
        team = payload["team"].get("id")
    if kind == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise Refusal(400, "malformed_body", "event_callback without an 'event.type'")
        event_id = payload.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise Refusal(400, "malformed_body", "event_callback without an 'event_id'")
        return event["type"], team, event_id
    if kind == "url_verification":
        return kind, team, None
    # Interactivity has no event id: its trigger id is unique per interaction.
    trigger = payload.get("trigger_id")
    event_id = trigger if isinstance(trigger, str) and trigger else (
        "sha256:" + hashlib.sha256(body).hexdigest())
    return kind, team, event_id


async def _receive(request: Request, state: IntakeState) -> Response:
    interactive = request.url.path.startswith("/slack/interactivity")
    content_type = media_type(request, (JSON, FORM))
    body = await read_limited(request, state.settings.max_body_bytes)
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp.isdigit():
        raise Refusal(401, "missing_timestamp", "missing or malformed X-Slack-Request-Timestamp")
    if abs(time.time() - int(timestamp)) > state.settings.slack_tolerance_seconds:
        raise Refusal(401, "stale_timestamp", "X-Slack-Request-Timestamp is more than "
                      f"{state.settings.slack_tolerance_seconds:g} s from now")
    if not signature:
        raise Refusal(401, "missing_signature", "missing X-Slack-Signature")
    payload = form_payload(body) if content_type == FORM else json_object(body)
    kind, team, event_id = _kind_and_ids(payload, body)
    creds = await _credentials(request, state, team)
    if not signatures.slack_v0(creds.active_secrets(), body, timestamp, signature):
        raise Refusal(401, "bad_signature", "signature does not verify")
    if kind == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise Refusal(400, "malformed_body", "url_verification without a 'challenge'")
        return JSONResponse({"challenge": challenge})
    assert event_id is not None
    event = NewEvent(source="slack", external_event_id=event_id[:500], event_type=kind,
                     payload=payload, headers=kept_headers(request), raw_body=body,
                     content_type=content_type, endpoint_id=creds.endpoint_id)
    stored = await run_in_threadpool(_store, state, creds, team or "", event)
    retry = request.headers.get("x-slack-retry-num")
    outcome = "duplicate" if stored.duplicate else "accepted"
    logger.info("event=slack_%s tenant=%s kind=%s webhook_event=%s retry=%s", outcome,
                creds.tenant_id, kind, stored.webhook_event_id, retry)
    # Interactivity must be answered 200 (anything else shows the user an error).
    status = 200 if stored.duplicate or interactive else 202
    return JSONResponse({"status": outcome}, status_code=status)


async def _credentials(request: Request, state: IntakeState, team: str | None) -> Credentials:
    token = request.path_params.get("token")
    cache = state.credentials
    if token:
        creds = (cache.cached_token("slack", token)
                 or await run_in_threadpool(cache.by_token, "slack", token))
    elif team:
        creds = (cache.cached_key("slack", team)
                 or await run_in_threadpool(cache.by_key, "slack", team))
    else:
        raise Refusal(404, "unknown_tenant", "no team id in the request: set the Slack app's "
                      "URL to /slack/events/TOKEN (url_verification carries no team id)")
    if creds is None:
        raise Refusal(404, "unknown_tenant", "no Slack endpoint matches this request")
    return creds


def _store(state: IntakeState, creds: Credentials, team: str, event: NewEvent) -> Stored:
    handler = SLACK_HANDLERS.get(event.event_type)
    if handler is None:
        return store(state.engine, creds.tenant_id, event)

    def inline(session: Session, webhook_event_id: uuid.UUID) -> None:
        handler(session, SlackEvent(
            tenant_id=creds.tenant_id, team_id=team, event_id=event.external_event_id,
            kind=event.event_type, payload=event.payload, webhook_event_id=webhook_event_id))

    try:
        return store(state.engine, creds.tenant_id, event, inline)
    except UNAVAILABLE:
        raise
    except Exception as exc:
        # The handler's transaction rolled back; keep the event, FAILED, for a replay.
        error = describe(exc)
        logger.error("event=slack_handler_failed tenant=%s kind=%s error=%s",
                     creds.tenant_id, event.event_type, type(exc).__name__, exc_info=True)
        return store_failed(state.engine, creds.tenant_id, event, error)
