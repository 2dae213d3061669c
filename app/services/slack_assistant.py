"""Slack events -> AI response jobs: which events the assistant answers, as plain functions.

The intake's ``POST /slack/events`` route verifies the request, answers
``url_verification``, finds the tenant (``assistant.workspaces.tenant_for_team``) and, in
that tenant's ``tenant_session``, calls ``route_event`` (wired with the actor's enqueue as
``app.actors.assistant.route_event(session, tenant_id, payload)``), then answers Slack at
once: the AI work runs in the ``ai.respond`` jobs.

Contract of ``route_event(session, tenant_id, payload, enqueue_response=...)``:

* ``payload`` is Slack's JSON: an Events API envelope (``type = "event_callback"``) or an
  interactivity payload (``type = "message_action"``, the form field ``payload`` decoded).
* It enqueues one ``ai.respond`` job, in the caller's transaction (the session must be the
  tenant's), for: an ``app_mention`` (``triggeredBy`` ``mention``, or ``thread`` when the
  mention is inside a thread); a ``message`` replying in a thread (``reply``); a message
  action (``message_action``). It returns the job ids.
* It returns ``[]`` for everything else: other event types, edits and other subtypes, bot
  messages (its own included), a thread reply that also mentions the bot (the
  ``app_mention`` event answers it), other payload types.
* A redelivered event (Slack retries after 3 s without an answer) returns the job already
  enqueued for it: each job's unique key is the event id (or the action's trigger id).
* A payload of a handled type lacking a needed field raises ``SlackEventInvalid`` naming
  it; nothing is enqueued.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db.tenant import TENANT_KEY, parse_tenant
from app.services.assistant.payloads import AIResponseJobData, ContextMessage, TriggeredBy

#: (session, job data, unique key) -> the job id (the existing one for a duplicate).
EnqueueResponse = Callable[[Session, AIResponseJobData, str], str]


class SlackEventInvalid(ValueError):
    """A Slack payload of a type the assistant handles misses a field it needs."""


def _field(data: Any, *path: str) -> Any:
    value = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or value == "":
        raise SlackEventInvalid(f"Slack payload has no {'.'.join(path)}")
    return value


def _bot_user(envelope: dict[str, Any]) -> str | None:
    for auth in envelope.get("authorizations") or []:
        if isinstance(auth, dict) and auth.get("is_bot") and auth.get("user_id"):
            return str(auth["user_id"])
    return None


def _event_request(envelope: dict[str, Any]) -> tuple[AIResponseJobData, str] | None:
    event = _field(envelope, "event")
    kind = event.get("type")
    if kind not in ("app_mention", "message") or event.get("subtype") or event.get("bot_id"):
        return None
    bot = _bot_user(envelope)
    user = _field(event, "user")
    if bot is not None and user == bot:
        return None
    ts = str(_field(event, "ts"))
    thread = event.get("thread_ts")
    in_thread = bool(thread) and thread != ts
    text = str(event.get("text") or "")
    triggered: TriggeredBy
    if kind == "app_mention":
        triggered = "thread" if in_thread else "mention"
    elif in_thread and not (bot is not None and f"<@{bot}>" in text):
        triggered = "reply"
    else:
        return None
    data = AIResponseJobData(
        workspace_id=str(envelope.get("team_id") or _field(event, "team")),
        user_id=str(user), channel_id=str(_field(event, "channel")), message_ts=ts,
        trigger_message_text=text, triggered_by=triggered,
        thread_ts=str(thread) if in_thread else None,
    )
    return data, f"slack-event-{_field(envelope, 'event_id')}"


def _action_request(payload: dict[str, Any]) -> tuple[AIResponseJobData, str]:
    message = _field(payload, "message")
    thread = message.get("thread_ts")
    author = message.get("user")
    context = ([ContextMessage(user_id=str(author), text=str(message.get("text") or ""),
                               ts=str(_field(message, "ts")))] if author else [])
    data = AIResponseJobData(
        workspace_id=str(_field(payload, "team", "id")),
        user_id=str(_field(payload, "user", "id")),
        channel_id=str(_field(payload, "channel", "id")),
        message_ts=str(_field(message, "ts")),
        trigger_message_text=str(message.get("text") or ""),
        context_messages=context, triggered_by="message_action",
        thread_ts=str(thread) if thread else None,
    )
    key = payload.get("trigger_id") or payload.get("action_ts") or _field(message, "ts")
    return data, f"slack-action-{key}"


def requests_for(payload: dict[str, Any]) -> list[tuple[AIResponseJobData, str]]:
    """The AI responses a Slack payload asks for, with their unique keys (see the contract)."""
    if not isinstance(payload, dict):
        raise SlackEventInvalid("Slack payload must be a JSON object")
    try:
        if payload.get("type") == "event_callback":
            found = _event_request(payload)
            return [found] if found else []
        if payload.get("type") == "message_action":
            return [_action_request(payload)]
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise SlackEventInvalid(f"Slack payload has invalid {fields}") from None
    return []


def route_event(
    session: Session, tenant_id: uuid.UUID | str, payload: dict[str, Any], *,
    enqueue_response: EnqueueResponse,
) -> list[str]:
    """Enqueue the AI responses ``payload`` asks for in ``session``'s transaction; job ids."""
    tenant = parse_tenant(tenant_id)
    if session.info.get(TENANT_KEY) != tenant:
        raise ValueError(f"route_event needs a tenant_session of tenant {tenant}")
    return [enqueue_response(session, data, key) for data, key in requests_for(payload)]
