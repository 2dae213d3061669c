"""Each adapter against a real local server: what is retried, what is permanent, and whether
a failure may have sent the message. No worker: the adapters are plain code."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from app.providers.fakes import FakeTwilio, FakeWhatsApp, server_error, throttled
from app.providers.outbound import (
    OutboundMessage,
    PermanentProviderError,
    Reconcile,
    TransientProviderError,
)
from app.providers.outbound_http import Timeouts, retry_after
from app.providers.smtp import SmtpEmail, SmtpSettings
from app.providers.smtp_sink import SmtpSink, free_port
from app.providers.twilio import TwilioSettings, TwilioSms
from app.providers.whatsapp import WhatsAppCloud, WhatsAppSettings
from tests.messaging.tls import self_signed, server_context

FAST = Timeouts(connect=1.0, read=1.0)


def sms(key: str = "k-1", to: str = "+15551238001") -> OutboundMessage:
    return OutboundMessage("sms", to, "hello", key)


def mail(key: str = "k-1", to: str = "zed@example.test") -> OutboundMessage:
    return OutboundMessage("email", to, "hello", key, subject="Hi", html="<p>hello</p>")


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def adapter(fake: FakeTwilio, **settings: object) -> TwilioSms:
    config = TwilioSettings.model_validate({"base_url": fake.url, "account_sid": "ACfake",
                                            "from_number": "+15550000000", **settings})
    return TwilioSms(config, fake.token, FAST)


def test_twilio_errors_are_classified(twilio: FakeTwilio) -> None:
    provider = adapter(twilio)
    twilio.next_responses.extend([throttled(7), server_error()])
    with pytest.raises(TransientProviderError) as throttle:
        provider.send(sms())
    assert throttle.value.retry_after == 7 and not throttle.value.maybe_sent
    with pytest.raises(TransientProviderError) as trouble:
        provider.send(sms())
    assert trouble.value.maybe_sent  # a 5xx may have been accepted
    with pytest.raises(PermanentProviderError, match="code 21211"):
        provider.send(sms(to="+15005550001"))
    with pytest.raises(PermanentProviderError, match="code 21610"):
        provider.send(sms(to="+15005550004"))
    with pytest.raises(PermanentProviderError, match="HTTP 401"):
        TwilioSms(provider.settings, "wrong-token", FAST).send(sms())
    assert twilio.sent == []


def test_twilio_deduplicates_and_looks_up_by_key(twilio: FakeTwilio) -> None:
    provider = adapter(twilio, reconcile="lookup")
    assert provider.lookup("k-9") is None
    first = provider.send(sms("k-9"))
    again = provider.send(sms("k-9"))
    assert again.replayed and again.provider_message_id == first.provider_message_id
    found = provider.lookup("k-9")
    assert found is not None and found.provider_message_id == first.provider_message_id
    assert len(twilio.sent) == 1


def test_a_server_that_accepts_but_never_answers_times_out_as_maybe_sent() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        config = TwilioSettings(base_url=f"http://{host}:{port}", account_sid="AC",
                                from_number="+1555")
        started = time.monotonic()
        with pytest.raises(TransientProviderError) as hung:
            TwilioSms(config, "t", FAST).send(sms())
        assert hung.value.maybe_sent
        assert time.monotonic() - started < 30  # bounded by the timeout, not forever
    with pytest.raises(TransientProviderError) as refused:
        TwilioSms(config, "t", FAST).send(sms())  # nothing listens any more
    assert not refused.value.maybe_sent


def test_whatsapp_errors_are_classified() -> None:
    with FakeWhatsApp() as fake:
        config = WhatsAppSettings(base_url=fake.url, phone_number_id=fake.phone_number_id,
                                  reconcile=Reconcile.DEDUPE)
        provider = WhatsAppCloud(config, fake.token, FAST)
        fake.next_responses.append(throttled(3))
        with pytest.raises(TransientProviderError) as throttle:
            provider.send(sms())
        assert throttle.value.retry_after == 3
        fake.invalid.add("+15551238002")
        with pytest.raises(PermanentProviderError, match="code 131026"):
            provider.send(sms(to="+15551238002"))
        with pytest.raises(PermanentProviderError, match="code 190"):
            WhatsAppCloud(config, "expired", FAST).send(sms())
        accepted = provider.send(sms("k-2"))
        assert accepted.provider_message_id.startswith("wamid.")
        assert provider.send(sms("k-2")).replayed


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(response("12")) == 12
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after(response(later)) or 0) <= 30
    assert retry_after(response("soon")) is None
    assert retry_after(httpx.Response(429)) is None


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed(tmp_path)
    return server_context(cert, key), ssl.create_default_context(cafile=cert)


def smtp(sink: SmtpSink, client_tls: ssl.SSLContext | None = None, **settings: object
         ) -> SmtpEmail:
    config = SmtpSettings.model_validate({"host": "127.0.0.1", "port": sink.port,
                                          "from_address": "noreply@example.test",
                                          "timeout": 5, **settings})
    return SmtpEmail(config, str(settings.pop("password", "pw")), tls_context=client_tls)


def test_smtp_replies_are_classified(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server, client = tls
    with SmtpSink(tls_context=server, credentials=("u", "pw")) as sink:
        provider = smtp(sink, client, username="u")
        sink.rejected_recipients.add("nobody@example.test")
        with pytest.raises(PermanentProviderError, match="RCPT TO refused: 550"):
            provider.send(mail(to="nobody@example.test"))
        sink.reply = "451 4.3.0 try again later"
        with pytest.raises(TransientProviderError, match="DATA refused: 451") as later:
            provider.send(mail())
        assert not later.value.maybe_sent  # the server said no: nothing was accepted
        sink.reply = "554 5.7.1 rejected as spam"
        with pytest.raises(PermanentProviderError, match="DATA refused: 554"):
            provider.send(mail())
        sink.reply = None
        with pytest.raises(PermanentProviderError, match="authentication refused"):
            SmtpEmail(provider.settings, "wrong", tls_context=client).send(mail())
        with pytest.raises(PermanentProviderError, match="TLS certificate refused"):
            smtp(sink, None, username="u").send(mail())  # the system CAs do not know it
        accepted = provider.send(mail("key/1"))
        assert accepted.provider_message_id == "<key-1@example.test>"
        (received,) = sink.received()
        assert received.message["Message-ID"] == "<key-1@example.test>"


def test_smtp_without_starttls_or_listener(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with SmtpSink() as plain:
        with pytest.raises(PermanentProviderError, match="STARTTLS required but not offered"):
            smtp(plain).send(mail())
        assert smtp(plain, starttls=False).send(mail()).provider_message_id
    with pytest.raises(TransientProviderError, match="before DATA") as refused:
        SmtpEmail(SmtpSettings(host="127.0.0.1", port=free_port(),
                               from_address="a@example.test"), None).send(mail())
    assert not refused.value.maybe_sent


def test_smtp_connection_lost_during_data_may_have_sent() -> None:
    """A server that takes the message and hangs up before answering: maybe sent."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                stream = conn.makefile("rwb")
                stream.write(b"220 fake\r\n")
                stream.flush()
                for line in stream:
                    if line.upper().startswith((b"EHLO", b"HELO")):
                        stream.write(b"250 fake\r\n")
                    elif line.upper().startswith((b"MAIL", b"RCPT")):
                        stream.write(b"250 ok\r\n")
                    elif line.upper().startswith(b"DATA"):
                        stream.write(b"354 go on\r\n")
                    elif line == b".\r\n":
                        return  # the message is in; the answer never comes
                    stream.flush()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        config = SmtpSettings(host="127.0.0.1", port=port, starttls=False,
                              from_address="a@example.test")
        with pytest.raises(TransientProviderError, match="during DATA") as cut:
            SmtpEmail(config, None).send(mail())
        assert cut.value.maybe_sent
        thread.join(timeout=5)
