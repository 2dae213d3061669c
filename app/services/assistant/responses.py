"""Generate an AI suggestion for a Slack message and show it to the user who asked.

Steps, with progress 10 / 90 / 100: ask the model (first, so the call starts with the job
and the queue's per-workspace rate is what the model endpoint sees), check the tenant's
Slack installation, record the suggestion, post it as an ephemeral message, record that it
was posted. The suggestion and the "posted" mark are
committed at once (``record``, the actor's ``separate_session``) because posting is an
external side effect: a retry after a failure reuses the recorded suggestion (the model is
not asked twice) and does not post again once it is marked posted. Slack has no
idempotency key for messages, so a crash between the post and its mark can show the
suggestion twice: at least once, never lost. The job's own transaction (``session``) gets
the processing time and commits with the job's completion.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from psycopg.rows import class_row
from sqlalchemy.orm import Session

from app.db.engine import raw_connection
from app.providers.model import ModelClient
from app.providers.slack import SlackClient, SlackSettings
from app.services.assistant import queries
from app.services.assistant.payloads import AIResponseJobData, AIResponseJobResult
from app.services.assistant.workspaces import get_workspace

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an assistant inside a Slack workspace. Suggest a concise, friendly reply the "
    "user could send to the last message, using the earlier messages as context. Answer with "
    "the suggested reply only."
)

Record = Callable[[], AbstractContextManager[Session]]
Progress = Callable[[float, str], object]


class WorkspaceMismatch(ValueError):
    """The job names a Slack workspace other than its tenant's installation."""


@dataclass(frozen=True)
class Suggestion:
    id: uuid.UUID
    job_id: uuid.UUID
    status: str
    suggestion: str | None
    error: str | None


def build_messages(request: AIResponseJobData) -> list[dict[str, str]]:
    """The chat for the model: instructions, the context, then the message to answer."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for message in request.context_messages:
        messages.append({"role": "user", "content": f"<@{message.user_id}>: {message.text}"})
    messages.append({"role": "user", "content": request.trigger_message_text})
    return messages


def _one(session: Session, query: str, params: dict[str, object]) -> Suggestion | None:
    with raw_connection(session).cursor(row_factory=class_row(Suggestion)) as cur:
        return cur.execute(query, params).fetchone()


def respond(
    tenant_id: uuid.UUID, request: AIResponseJobData, *, job_id: str, retrying: bool,
    session: Callable[[], Session], record: Record, progress: Progress, model: ModelClient,
    slack: SlackSettings,
) -> AIResponseJobResult:
    started = time.monotonic()
    fields = f"tenant={tenant_id} job={job_id}"
    progress(10, "generating a suggestion")
    earlier = None
    if retrying:
        with record() as early:
            earlier = _one(early, queries.FIND, {"job": job_id})
    completion = None
    if earlier is None or earlier.suggestion is None:
        # The model call comes first, so that it starts when the job does: the queue's rate
        # limit (10 per second per workspace) is what the model endpoint sees.
        completion = model.complete(build_messages(request), user=str(tenant_id))
    with record() as early:
        workspace = get_workspace(early)
        if workspace.team_id != request.workspace_id:
            raise WorkspaceMismatch(f"job names workspace {request.workspace_id!r}, the "
                                    f"tenant is installed in {workspace.team_id!r}")
        if completion is not None:
            suggestion = _one(early, queries.GENERATED, {
                "tenant": tenant_id, "job": job_id, "channel": request.channel_id,
                "user": request.user_id, "ts": request.message_ts,
                "triggered_by": request.triggered_by, "suggestion": completion.text})
            assert suggestion is not None
            logger.info("event=ai_suggestion_generated %s suggestion=%s model=%s tokens=%s",
                        fields, suggestion.id, completion.model, completion.completion_tokens)
        else:
            assert earlier is not None
            suggestion = earlier
            logger.info("event=ai_suggestion_reused %s suggestion=%s", fields, earlier.id)
    text = suggestion.suggestion or ""
    progress(90, "posting the suggestion")
    if suggestion.status != "posted":
        SlackClient(slack, workspace.token()).post_ephemeral(
            channel=request.channel_id, user=request.user_id, text=text,
            thread_ts=request.thread_ts)
        with record() as early:
            raw_connection(early).execute(queries.POSTED, {"id": suggestion.id})
        logger.info("event=ai_suggestion_posted %s suggestion=%s", fields, suggestion.id)
    elapsed = int((time.monotonic() - started) * 1000)
    raw_connection(session()).execute(queries.TIMED, {"id": suggestion.id, "ms": elapsed})
    progress(100, "posted")
    return AIResponseJobResult(suggestion_id=suggestion.id, suggestion=text,
                               processing_time_ms=elapsed)


def record_failure(session: Session, tenant_id: uuid.UUID, job_id: str,
                   request: AIResponseJobData, error: str) -> None:
    """The job will not be retried: its suggestion row says failed, with the error."""
    _one(session, queries.FAILED, {
        "tenant": tenant_id, "job": job_id, "channel": request.channel_id,
        "user": request.user_id, "ts": request.message_ts,
        "triggered_by": request.triggered_by, "error": error[:2000]})
