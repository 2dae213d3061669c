"""The Slack AI assistant on the intake's Slack routes.

Mentions, replies in a thread and message actions enqueue ``ai.respond`` in the intake's
own transaction (with the stored event), and Slack is answered at once; the AI response
comes later, as an ephemeral message. Other Slack events are stored and acknowledged.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.intake.slack import SlackEvent, register_slack_handler

#: The Slack events and interactivity payloads the assistant answers.
KINDS = ("app_mention", "message", "message_action")


def respond(session: Session, event: SlackEvent) -> None:
    from app.actors.assistant import route_event

    route_event(session, event.tenant_id, event.payload)


for _kind in KINDS:
    register_slack_handler(_kind)(respond)
