"""The messaging part of ``make demo``: one notification per channel, a scheduled message, a
cancelled one and a digest, against local fake providers this process starts.

The workers reach the fakes through the environment's default providers (``MESSAGING_*``,
passed to the worker processes), the way a deployment configures its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from app.actors import digests
from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.messaging.notify import notify
from app.messaging.scheduling import cancel_message, schedule_message
from app.messaging.templates import save_template
from app.providers.fakes import FakeTwilio, FakeWhatsApp
from app.providers.smtp_sink import SmtpSink
from app.services.digests import DigestRequest

SMS, CHAT, LATER, NEVER = "+15557000001", "+15557000002", "+15557000003", "+15557000004"


@dataclass
class MessagingDemo:
    sms: FakeTwilio = field(default_factory=FakeTwilio)
    whatsapp: FakeWhatsApp = field(default_factory=FakeWhatsApp)
    smtp: SmtpSink = field(default_factory=SmtpSink)
    scheduled_at: datetime | None = None
    ids: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def running(self) -> Iterator[dict[str, str]]:
        """Start the fakes; yields the workers' environment pointing at them."""
        with self.sms, self.whatsapp, self.smtp:
            yield {
                "MESSAGING_SMTP_HOST": "127.0.0.1", "MESSAGING_SMTP_PORT": str(self.smtp.port),
                "MESSAGING_SMTP_STARTTLS": "0", "MESSAGING_EMAIL_FROM": "demo@example.test",
                "MESSAGING_SMS_URL": self.sms.url, "MESSAGING_SMS_ACCOUNT": "ACfake",
                "MESSAGING_SMS_TOKEN": self.sms.token, "MESSAGING_SMS_FROM": "+15550000000",
                "MESSAGING_SMS_RECONCILE": "lookup",
                "MESSAGING_WHATSAPP_URL": self.whatsapp.url,
                "MESSAGING_WHATSAPP_PHONE_ID": self.whatsapp.phone_number_id,
                "MESSAGING_WHATSAPP_TOKEN": self.whatsapp.token,
                "MESSAGING_WHATSAPP_RECONCILE": "dedupe",
            }

    def feed(self, owner: psycopg.Connection[Any], tenant: uuid.UUID) -> None:
        user = owner.execute(
            "INSERT INTO users (tenant_id, email, name) VALUES (%s, %s, 'Demo Owner') "
            "RETURNING id", (tenant, f"owner-{tenant.hex[:6]}@example.test")).fetchone()
        assert user is not None
        self.ids["tenant"] = tenant
        now = datetime.now(UTC)
        self.scheduled_at = now + timedelta(seconds=3)
        with tenant_session(tenant) as session:
            save_template(session, "demo.hello", subject="Hello from {{ shop }}",
                          body_text="Hello {{ name }}, {{ shop }} says hi.",
                          body_html="<p>Hello {{ name }}, <b>{{ shop }}</b> says hi.</p>")
            params = {"name": "Ann", "shop": "Demo & Co"}
            notify(session, "email", "ann@example.test", "demo.hello", params)
            notify(session, "sms", SMS, "demo.hello", params)
            notify(session, "whatsapp", CHAT, "demo.hello", params)
            self.ids["later"] = schedule_message(
                session, channel="sms", recipient=LATER, template_id="demo.hello",
                params=params, send_at=self.scheduled_at)
            self.ids["never"] = schedule_message(
                session, channel="sms", recipient=NEVER, template_id="demo.hello",
                params=params, send_at=now + timedelta(seconds=2))
            request = DigestRequest(user_id=user[0], period="daily",
                                    period_start=now - timedelta(days=1),
                                    period_end=now + timedelta(hours=1), timezone="UTC")
            enqueue(session, digests.build, request.model_dump(mode="json"))
            enqueue(session, digests.build, request.model_dump(mode="json"))  # twice: 1 email
        with tenant_session(tenant) as session:
            cancel_message(session, self.ids["never"])

    def verify(self, owner: psycopg.Connection[Any]) -> list[tuple[str, bool, str]]:
        mails = self.smtp.received()
        hello = [m for m in mails if m.message["Subject"] == "Hello from Demo & Co"]
        digest = [m for m in mails if str(m.message["Subject"]).startswith("Your daily")]
        later = self.sms.sent_to(LATER)
        status = dict(owner.execute(
            "SELECT id, status FROM scheduled_messages WHERE id = ANY(%s)",
            ([self.ids["later"], self.ids["never"]],)).fetchall())
        digest_status = owner.execute(
            "SELECT string_agg(status, ',') FROM digests WHERE tenant_id = %s",
            (self.ids["tenant"],)).fetchone()
        on_time = bool(later and self.scheduled_at
                       and later[0].at >= self.scheduled_at.timestamp() - 0.005)
        late = f"{later[0].at - self.scheduled_at.timestamp():.2f} s after its time" \
            if later and self.scheduled_at else "not sent"
        return [
            ("email received by the SMTP server, rendered", len(hello) == 1 and bool(
                hello[0].message.get_body(("html",))), f"{len(hello)} email(s)"),
            ("SMS reached the fake provider once", len(self.sms.sent_to(SMS)) == 1,
             f"{len(self.sms.sent_to(SMS))} sent"),
            ("WhatsApp reached the fake provider once", len(self.whatsapp.sent_to(CHAT)) == 1,
             f"{len(self.whatsapp.sent_to(CHAT))} sent"),
            ("scheduled message sent once, at its time",
             len(later) == 1 and on_time and status.get(self.ids["later"]) == "sent", late),
            ("cancelled message never sent",
             self.sms.sent_to(NEVER) == [] and status.get(self.ids["never"]) == "cancelled",
             f"status {status.get(self.ids['never'])}"),
            ("digest emailed once though its job ran twice",
             len(digest) == 1 and bool(digest_status and digest_status[0] == "sent"),
             f"{len(digest)} email(s), digest {digest_status[0] if digest_status else None}"),
        ]
