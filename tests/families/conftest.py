"""Fixtures of the families' tests: the fake servers, a shared sealing key, tenants with a
Slack installation or store channels, worker environments pointing at the fakes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from app import sealing
from app.db.tenant import tenant_session
from app.fakes import FakeCarrier, FakeModel, FakeShopify, FakeSlack, FakeWooCommerce
from app.services.assistant.workspaces import install_workspace
from app.services.commerce.channels import add_channel
from tests.support import TestDB

#: Worker settings for tests: short leases, no retention pass pruning inspected rows.
FAST = {"JOBS_LEASE_SECONDS": "3", "JOBS_HEARTBEAT_SECONDS": "0.5",
        "JOBS_MAINTENANCE_SECONDS": "3600"}


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """One sealing key for this test and the workers it starts."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(sealing.ENV, key)
    sealing.reset_keys()
    yield key
    sealing.reset_keys()


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel() as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def shopify() -> Iterator[FakeShopify]:
    with FakeShopify() as fake:
        yield fake


@pytest.fixture
def woocommerce() -> Iterator[FakeWooCommerce]:
    with FakeWooCommerce() as fake:
        yield fake


@pytest.fixture
def carrier() -> Iterator[FakeCarrier]:
    with FakeCarrier() as fake:
        yield fake


def ai_env(secret_key: str, model: FakeModel, slack: FakeSlack) -> dict[str, str]:
    return {sealing.ENV: secret_key, "AI_MODEL_BASE_URL": model.base_url,
            "AI_MODEL_API_KEY": model.api_key, "AI_MODEL_NAME": "fake-model",
            "AI_MODEL_TIMEOUT_SECONDS": "30", "SLACK_API_BASE_URL": slack.base_url}


def commerce_env(secret_key: str, **extra: str) -> dict[str, str]:
    return {sealing.ENV: secret_key, "COMMERCE_TIMEOUT_SECONDS": "90", **extra}


@dataclass
class Workspace:
    tenant: uuid.UUID
    team: str
    token: str


def slack_tenant(db: TestDB, slack: FakeSlack, name: str, team: str) -> Workspace:
    """A tenant installed in Slack team ``team`` (known to the fake Slack)."""
    tenant = db.create_tenant(name)
    token = f"xoxb-{team}-{uuid.uuid4().hex[:8]}"
    slack.add_workspace(team, token)
    with tenant_session(tenant) as session:
        install_workspace(session, tenant, team_id=team, bot_token=token, bot_user_id=f"B{team}")
    return Workspace(tenant, team, token)


def store(tenant: uuid.UUID, platform: str, url: str, credentials: dict[str, str],
          name: str = "store") -> uuid.UUID:
    with tenant_session(tenant) as session:
        return add_channel(session, tenant, platform=platform, name=name, base_url=url,
                           credentials=credentials)


def shopify_channel(tenant: uuid.UUID, fake: FakeShopify, name: str = "shop") -> uuid.UUID:
    return store(tenant, "shopify", fake.url, {"access_token": fake.access_token}, name)


def carrier_channel(tenant: uuid.UUID, fake: FakeCarrier) -> uuid.UUID:
    return store(tenant, "carrier", fake.url, {"api_key": fake.api_key}, "carrier")


def mention(team: str, text: str, event_id: str, *, user: str = "U1", channel: str = "C1",
            ts: str = "1700000000.000100", thread_ts: str | None = None) -> dict[str, Any]:
    """A Slack Events API ``app_mention`` envelope."""
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": text, "ts": ts,
                             "channel": channel}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {"type": "event_callback", "team_id": team, "event_id": event_id, "event": event,
            "authorizations": [{"team_id": team, "user_id": f"B{team}", "is_bot": True}]}




def holds_for(seconds: float, condition: Callable[[], bool], message: str) -> None:
    """Assert ``condition`` stays true for ``seconds``: here the window is the assertion."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), message
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
