"""Handlers of the intake tests, also for real workers (``dramatiq tests.intake.handlers``).

``icount`` fails while the file named by ``INTAKE_TEST_BROKEN`` exists: with
``INTAKE_TEST_MODE=permanent`` as a permanent error (dead letter at once), otherwise as a
transient one (retried). Removing the file "fixes the upstream".
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session

from app.jobs.setup import configure

broker = configure()

import app.actors  # noqa: E402, F401  (the application's actors share the worker)
from app.services.payloads import ActivityJob, WebhookJob  # noqa: E402
from app.services.webhook_payloads import PayloadError  # noqa: E402
from app.services.webhooks import record_received, register_handler  # noqa: E402


@register_handler("icount", replace=True)
def flaky_icount(session: Session, event: WebhookJob) -> ActivityJob:
    broken = os.environ.get("INTAKE_TEST_BROKEN")
    if broken and os.path.exists(broken):
        if os.environ.get("INTAKE_TEST_MODE") == "permanent":
            raise PayloadError(f"icount refused document {event.event_id}")
        raise RuntimeError("icount API unavailable")
    return record_received(session, event)
