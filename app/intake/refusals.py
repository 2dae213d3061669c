"""A refused request: its status, a reason for logs and metrics, a message for the sender.

Every refusal is answered as JSON ``{"error": reason, "detail": message}``, logged once
(ids only, never a payload value) and counted; none leaves a row or a job behind.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from app.intake.metrics import REFUSALS

logger = logging.getLogger("app.intake")


class Refusal(Exception):
    def __init__(self, status: int, reason: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = headers or {}


def refuse(source: str, refusal: Refusal, **ids: object) -> JSONResponse:
    REFUSALS.labels(source, refusal.reason).inc()
    extra = "".join(f" {k}={v}" for k, v in ids.items() if v is not None)
    level = logging.WARNING if refusal.status >= 500 else logging.INFO
    logger.log(level, "event=webhook_refused source=%s status=%s reason=%s%s",
               source, refusal.status, refusal.reason, extra)
    return JSONResponse({"error": refusal.reason, "detail": refusal.detail},
                        status_code=refusal.status, headers=refusal.headers)
