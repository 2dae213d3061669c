"""A local SMTP server (aiosmtpd) that really receives mail: for the tests and the demo.

Optional STARTTLS (a server ``ssl.SSLContext``) and AUTH (one username and password); every
accepted message is parsed and kept. ``on_accept`` runs once a message is accepted and
before the ``250`` goes out, to kill the sender at the worst moment. ``reply`` makes the
server answer DATA with a scripted code instead (``451``, ``554``...).
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpSink:
    def __init__(
        self, *, tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.tls_context = tls_context
        self.credentials = credentials
        self.mails: list[Mail] = []
        self.rejected_recipients: set[str] = set()
        self.on_accept: Callable[[Mail], None] | None = None
        self.reply: str | None = None
        self.lock = threading.Lock()
        self.port = 0
        self._controller: Any = None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        sink = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                                  address: str, options: Any) -> str:
                if address in sink.rejected_recipients:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.reply is not None:
                    return sink.reply
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                mail = Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed)
                with sink.lock:
                    sink.mails.append(mail)
                if sink.on_accept is not None:
                    sink.on_accept(mail)
                return "250 2.0.0 Message accepted for delivery"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         auth_data: Any) -> Any:
            ok = (isinstance(auth_data, LoginPassword) and sink.credentials is not None
                  and (auth_data.login.decode(), auth_data.password.decode())
                  == sink.credentials)
            return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535

        options: dict[str, Any] = {}
        if self.tls_context is not None:
            options.update(tls_context=self.tls_context, require_starttls=True)
        if self.credentials is not None:
            options.update(authenticator=authenticate, auth_required=True,
                           auth_require_tls=self.tls_context is not None)
        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                      **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def received(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)
