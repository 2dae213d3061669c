"""Degraded mode: with the database unreachable, enqueue fails fast with a clear error.

A server that accepts TCP connections but never answers is the worst case (no RST, no
timeout from the kernel): every connection the application opens has a connect timeout
(``JOBS_CONNECT_TIMEOUT``) and every pool a checkout timeout (``JOBS_POOL_TIMEOUT``), so
``tenant_session`` + ``enqueue`` and ``actor.send()`` raise within them instead of hanging.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from dramatiq.errors import ConnectionError
from sqlalchemy.exc import OperationalError

from app.actors import webhooks
from app.config import get_settings
from app.db.engine import dispose_engines
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.lifecycle import actors as lifecycle_actors
from tests.support import TestDB

TIMEOUT = 2  # libpq counts whole seconds, at least 2


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and then says nothing, ever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_enqueue_against_a_server_that_never_answers_fails_within_the_timeout(
    db: TestDB, broker: object, black_hole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = db.create_tenant()
    url = f"postgresql://app_user@127.0.0.1:{black_hole}/nowhere"
    monkeypatch.setenv("APP_DATABASE_URL", url)
    monkeypatch.setenv("JOBS_CONNECT_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("JOBS_POOL_TIMEOUT", str(TIMEOUT))
    get_settings.cache_clear()
    dispose_engines()
    started = time.monotonic()
    with pytest.raises(OperationalError, match="timeout"), tenant_session(tenant) as session:
        enqueue(session, webhooks.process, {"source": "test"})
    assert time.monotonic() - started < TIMEOUT + 3


def test_actor_send_through_the_broker_fails_within_the_timeout(
    db: TestDB, broker: object, black_hole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS_CONNECT_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("JOBS_POOL_TIMEOUT", str(TIMEOUT))
    get_settings.cache_clear()
    broker.connect_to(f"postgresql://app_worker@127.0.0.1:{black_hole}/nowhere")  # type: ignore[attr-defined]
    started = time.monotonic()
    # dramatiq's own ConnectionError, as for any broker, naming the wait.
    with pytest.raises(ConnectionError, match=r"couldn.t get a connection after 2\.00 sec"):
        lifecycle_actors.noop.send()  # a system job: a transaction of its own, on the pool
    assert time.monotonic() - started < 2 * TIMEOUT + 3
