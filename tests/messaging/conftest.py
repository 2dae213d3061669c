"""Fixtures of the messaging tests: local fake providers, an SMTP server, worker processes.

The fakes run in this test process (threads on 127.0.0.1, free ports); the workers are real
``dramatiq app.actors`` processes that reach them over the network, configured through the
tenant's provider rows or the environment, exactly as in production.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.db.tenant import tenant_session
from app.messaging.channels import set_provider
from app.messaging.settings import get_messaging_settings
from app.providers.fakes import FakeTwilio, FakeWhatsApp
from app.providers.smtp_sink import SmtpSink
from tests.conftest import migrate
from tests.faults.cluster import PrivateCluster
from tests.messaging.tls import self_signed, server_context
from tests.support import TestDB

SMTP_LOGIN = ("mailer", "s3cret-password")


@dataclass
class Providers:
    sms: FakeTwilio
    whatsapp: FakeWhatsApp
    smtp: SmtpSink
    ca_file: Path

    def configure(self, tenant: uuid.UUID, *, sms_reconcile: str = "lookup",
                  whatsapp_reconcile: str = "dedupe", engine: Engine | None = None) -> None:
        """The tenant's provider rows point at the fakes (secrets sealed on the way in)."""
        with tenant_session(tenant, engine=engine) as session:
            set_provider(session, "email", "smtp", {
                "host": "127.0.0.1", "port": self.smtp.port, "starttls": True,
                "username": SMTP_LOGIN[0], "from_address": "alerts@example.test",
                "from_name": "Example Alerts", "timeout": 5}, secret=SMTP_LOGIN[1])
            set_provider(session, "sms", "twilio", {
                "base_url": self.sms.url, "account_sid": self.sms.account_sid,
                "from_number": "+15550000000", "reconcile": sms_reconcile},
                secret=self.sms.token)
            set_provider(session, "whatsapp", "whatsapp_cloud", {
                "base_url": self.whatsapp.url, "phone_number_id": self.whatsapp.phone_number_id,
                "reconcile": whatsapp_reconcile}, secret=self.whatsapp.token)

    def env(self) -> dict[str, str]:
        """Worker environment: trust the test CA; fast leases and rescue; no pruning."""
        return {"MESSAGING_SMTP_CA_FILE": str(self.ca_file), "MESSAGING_TIMEOUT": "5",
                "JOBS_LEASE_SECONDS": "3", "JOBS_HEARTBEAT_SECONDS": "0.5",
                "JOBS_POLL_SECONDS": "1", "JOBS_MAINTENANCE_SECONDS": "0",
                "dramatiq_restart_delay": "500"}


@pytest.fixture
def providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Providers]:
    cert, key = self_signed(tmp_path)
    sms, whatsapp = FakeTwilio().start(), FakeWhatsApp().start()
    smtp = SmtpSink(tls_context=server_context(cert, key), credentials=SMTP_LOGIN).start()
    found = Providers(sms, whatsapp, smtp, cert)
    for name, value in found.env().items():
        monkeypatch.setenv(name, value)
    get_messaging_settings.cache_clear()
    try:
        yield found
    finally:
        smtp.stop()
        sms.stop()
        whatsapp.stop()
        get_messaging_settings.cache_clear()


@pytest.fixture
def tenant(db: TestDB, providers: Providers, broker: object) -> uuid.UUID:
    """A tenant whose three channels go to the fakes."""
    tenant_id = db.create_tenant("acme")
    providers.configure(tenant_id)
    return tenant_id


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this test's own that it may restart (never the shared one)."""
    base = Path(tempfile.mkdtemp(prefix="pgjobs-messaging-"))
    base.chmod(0o755)  # PostgreSQL may run as another OS user that must reach it
    cluster = PrivateCluster(base)
    try:
        url = cluster.start()
        migrate(url)
        cluster.db = TestDB(owner_url=url, name="jobs")
        yield cluster
    finally:
        if cluster.db is not None:
            cluster.db.stop_all()
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
