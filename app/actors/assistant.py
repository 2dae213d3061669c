"""``ai.respond``: an AI suggestion for a Slack message, shown to its user (plan 003).

Queue ``ai``: 3 attempts from 2 s; 10 starts per second and 5 running per workspace (the
tenant). A provider's 429 is retried after its ``Retry-After``; permanent errors (a refused
key, a channel the bot is not in, a bad payload) go straight to the dead letters and leave
the suggestion row ``failed`` with the error.
"""

from __future__ import annotations

from typing import Any

from dramatiq.errors import Retry
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db.tenant import TENANT_KEY
from app.jobs import current_job, current_session, current_tenant, enqueue, job, report_progress
from app.jobs.context import separate_session
from app.jobs.hooks import FailedAttempt
from app.providers.errors import PermanentError, RateLimited
from app.providers.model import ModelClient, ModelSettings
from app.providers.slack import SlackSettings
from app.sealing import SealingError
from app.services import slack_assistant
from app.services.assistant import responses
from app.services.assistant.payloads import AIResponseJobData
from app.services.assistant.workspaces import NotInstalled

PERMANENT = (ValidationError, PermanentError, NotInstalled, responses.WorkspaceMismatch,
             SealingError)
#: A Slack event redelivered within this many seconds of its job finishing is still a no-op.
REDELIVERY_WINDOW = 3600.0


def _failed(session: Session, attempt: FailedAttempt) -> None:
    if not attempt.final or not attempt.args:
        return
    try:
        request = AIResponseJobData.model_validate(attempt.args[0])
    except ValidationError:
        return  # the dead letter's error says what was wrong with the payload
    responses.record_failure(session, session.info[TENANT_KEY], attempt.message_id, request,
                             attempt.error)


@job(actor_name="ai.respond", queue_name="ai", throws=PERMANENT, on_failure=_failed,
     unique_window=REDELIVERY_WINDOW, time_limit=180_000)
def respond(data: dict[str, Any]) -> dict[str, object]:
    request = AIResponseJobData.model_validate(data)
    ctx = current_job()
    tenant = current_tenant()
    assert ctx is not None and tenant is not None
    try:
        result = responses.respond(
            tenant, request, job_id=ctx.message.message_id, retrying=ctx.message.attempt > 1,
            session=current_session, record=separate_session, progress=report_progress,
            model=ModelClient(ModelSettings.from_env()), slack=SlackSettings.from_env(),
        )
    except RateLimited as exc:
        delay = None if exc.retry_after is None else int(exc.retry_after * 1000)
        raise Retry(str(exc), delay=delay) from exc
    return result.wire()


def enqueue_response(session: Session, data: AIResponseJobData, key: str) -> str:
    """Enqueue ``ai.respond`` in ``session``'s transaction; the job id (existing if a dup)."""
    return enqueue(session, respond, data.wire(), unique_key=key).message_id


def route_event(session: Session, tenant_id: Any, payload: dict[str, Any]) -> list[str]:
    """``slack_assistant.route_event`` wired to this actor: what the Slack route calls."""
    return slack_assistant.route_event(session, tenant_id, payload,
                                       enqueue_response=enqueue_response)
