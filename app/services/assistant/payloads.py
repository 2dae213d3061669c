"""The plan's ``AIResponseJobData`` / ``AIResponseJobResult``, with its camelCase wire names.

Jobs carry them as JSON with the plan's field names (``workspaceId``, ``triggeredBy``...);
Python code uses snake_case. ``threadTs`` is ours: where to post the answer in a thread.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

TriggeredBy = Literal["mention", "reply", "thread", "message_action"]
SlackId = Annotated[str, Field(min_length=1, max_length=64)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ContextMessage(_Wire):
    user_id: SlackId
    text: str = Field(max_length=40_000)
    ts: SlackId


class AIResponseJobData(_Wire):
    workspace_id: SlackId
    user_id: SlackId
    channel_id: SlackId
    message_ts: SlackId
    trigger_message_text: str = Field(max_length=40_000)
    context_messages: list[ContextMessage] = Field(default_factory=list, max_length=50)
    triggered_by: TriggeredBy
    thread_ts: SlackId | None = None

    def wire(self) -> dict[str, object]:
        """The job argument: JSON with the plan's names."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AIResponseJobResult(_Wire):
    suggestion_id: uuid.UUID
    suggestion: str
    processing_time_ms: int

    def wire(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)
