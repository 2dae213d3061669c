"""An OpenAI-compatible chat completions client (``POST {base}/chat/completions``).

Works with any server speaking that API (OpenAI, Azure-style gateways, vLLM, Ollama's
OpenAI endpoint, a local fake). No streaming: AI responses run in a background job, so the
whole answer is awaited within ``AI_MODEL_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from app.config import env_number
from app.providers import http
from app.providers.errors import PermanentError

PROVIDER = "model"


@dataclass(frozen=True)
class ModelSettings:
    base_url: str
    api_key: str | None
    model: str
    timeouts: http.Timeouts
    max_tokens: int
    temperature: float

    @classmethod
    def from_env(cls) -> ModelSettings:
        return cls(
            base_url=os.environ.get("AI_MODEL_BASE_URL", "https://api.openai.com/v1"),
            api_key=os.environ.get("AI_MODEL_API_KEY") or None,
            model=os.environ.get("AI_MODEL_NAME", "gpt-4o-mini"),
            timeouts=http.Timeouts(
                connect=env_number("AI_MODEL_CONNECT_TIMEOUT_SECONDS", 5.0),
                read=env_number("AI_MODEL_TIMEOUT_SECONDS", 60.0),
            ),
            max_tokens=int(env_number("AI_MODEL_MAX_TOKENS", 800)),
            temperature=env_number("AI_MODEL_TEMPERATURE", 0.3),
        )

    def __repr__(self) -> str:  # never print the key
        return f"ModelSettings(base_url={self.base_url!r}, model={self.model!r})"


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


class ModelClient:
    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    def complete(self, messages: list[dict[str, str]], *, user: str | None = None) -> Completion:
        """The assistant's answer to ``messages`` ([{"role", "content"}, ...]).

        ``user`` is the OpenAI end-user identifier (we pass the tenant id, never a person's
        id), which providers use for abuse monitoring and per-user limits.
        """
        settings = self.settings
        if not settings.api_key:
            raise PermanentError(PROVIDER, "AI_MODEL_API_KEY is not set")
        body: dict[str, Any] = {
            "model": settings.model, "messages": messages, "stream": False,
            "max_tokens": settings.max_tokens, "temperature": settings.temperature,
        }
        if user:
            body["user"] = user
        response = http.send(
            http.client(settings.base_url, settings.timeouts), PROVIDER, "POST",
            "/chat/completions", json=body,
            headers={"Authorization": f"Bearer {settings.api_key}"},
        )
        data = http.json_body(response, PROVIDER)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise PermanentError(PROVIDER, "answer has no choices[0].message.content",
                                 status=response.status_code) from None
        if not isinstance(text, str) or not text.strip():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise PermanentError(PROVIDER, f"empty answer (finish_reason={reason})",
                                 status=response.status_code)
        usage = data.get("usage") or {}
        return Completion(text=text.strip(), model=str(data.get("model") or settings.model),
                          prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"))
