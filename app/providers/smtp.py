"""Email over SMTP (smtplib): STARTTLS, AUTH, a text + HTML multipart, a stable Message-ID.

The Message-ID is derived from the delivery's idempotency key, so every attempt of one
delivery carries the same one (mail systems and clients can drop a duplicate). SMTP has no
way to ask what became of a message, so this adapter never reconciles: once the DATA
command may have been accepted, a failure says ``maybe_sent`` and the caller stops.

Replies decide the class: 5xx to MAIL, RCPT or DATA (e.g. ``550 no such user``) and refused
credentials are permanent; 4xx (``451 try again later``), connection errors and timeouts
before DATA are retried.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.providers.outbound import (
    Accepted,
    OutboundMessage,
    PermanentProviderError,
    Reconcile,
    TransientProviderError,
)

NAME = "smtp"


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    from_address: str = Field(min_length=3, pattern=r"^[^@\s<>]+@[^@\s<>]+$")
    from_name: str | None = None
    timeout: float = Field(default=10.0, gt=0)


def message_id(idempotency_key: str, from_address: str) -> str:
    """``<key@domain>``: the same for every attempt of a delivery."""
    domain = from_address.rsplit("@", 1)[1]
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "-" for ch in idempotency_key)
    return f"<{safe}@{domain}>"


def build_email(message: OutboundMessage, settings: SmtpSettings) -> EmailMessage:
    mail = EmailMessage()
    sender = settings.from_address
    mail["From"] = f"{settings.from_name} <{sender}>" if settings.from_name else sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject or ""
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id(message.idempotency_key, sender)
    mail.set_content(message.text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    return mail


class SmtpEmail:
    name = NAME
    reconcile = Reconcile.NONE

    def __init__(
        self, settings: SmtpSettings, password: str | None, *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self._password = password
        self._tls = tls_context or ssl.create_default_context()

    def send(self, message: OutboundMessage) -> Accepted:
        mail = build_email(message, self.settings)
        s = self.settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
                self._open(smtp)
                _expect(smtp.mail(s.from_address), (250,), "MAIL FROM")
                _expect(smtp.rcpt(message.recipient), (250, 251), "RCPT TO")
                try:
                    # smtplib raises only when DATA itself is refused; the reply to the
                    # message (250, or 4xx / 5xx) comes back as a value.
                    reply = smtp.data(mail.as_bytes())
                except smtplib.SMTPDataError as exc:
                    raise _reply_error("DATA", exc.smtp_code, exc.smtp_error) from None
                except (OSError, smtplib.SMTPException) as exc:
                    # The message may have been accepted before the connection broke.
                    raise TransientProviderError(
                        NAME, f"{type(exc).__name__} during DATA", maybe_sent=True
                    ) from None
                _expect(reply, (250,), "DATA")
        except (PermanentProviderError, TransientProviderError):
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentProviderError(NAME, f"authentication refused ({exc.smtp_code})") \
                from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentProviderError(NAME, f"server does not support it: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentProviderError(NAME, f"TLS certificate refused: {exc.verify_message}") \
                from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientProviderError(NAME, f"{type(exc).__name__} before DATA") from None
        return Accepted(str(mail["Message-ID"]))

    def _open(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo()
        if self.settings.starttls:
            if not smtp.has_extn("starttls"):
                raise PermanentProviderError(NAME, "STARTTLS required but not offered")
            smtp.starttls(context=self._tls)
            smtp.ehlo()
        if self.settings.username:
            smtp.login(self.settings.username, self._password or "")

    def lookup(self, idempotency_key: str) -> Accepted | None:
        raise NotImplementedError("SMTP cannot be asked what became of a message")


def _text(reply: Any) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _reply_error(command: str, code: int, reply: Any) -> Exception:
    reason = f"{command} refused: {code} {_text(reply)}"
    if 400 <= code < 500:
        return TransientProviderError(NAME, reason)
    return PermanentProviderError(NAME, reason)


def _expect(result: tuple[int, bytes], codes: tuple[int, ...], command: str) -> None:
    code, reply = result
    if code not in codes:
        raise _reply_error(command, code, reply)
