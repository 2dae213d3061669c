"""One LISTEN connection per intake process, shared by every open stream and the caches.

Channels carry ids only (LISTEN is not under RLS): ``pgjobs.activity`` names a tenant that
has new activity, and each of that tenant's open streams is woken to read the feed itself
under the tenant's RLS; ``pgjobs.intake_credentials`` names an endpoint whose secrets
changed, and the credential cache forgets it. Malformed notifications are ignored. When the
connection drops, it is re-opened with backoff; on every (re)connect the caches are cleared
and all streams are woken, so a notification missed meanwhile costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict

import psycopg

from app.intake.credentials import CredentialCache

logger = logging.getLogger(__name__)

ACTIVITY = "pgjobs.activity"
CREDENTIALS = "pgjobs.intake_credentials"


class Listener:
    def __init__(self, url: str, credentials: CredentialCache) -> None:
        self._url = url
        self._credentials = credentials
        self._streams: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, tenant: uuid.UUID) -> asyncio.Event:
        wake = asyncio.Event()
        self._streams[tenant].add(wake)
        return wake

    def unsubscribe(self, tenant: uuid.UUID, wake: asyncio.Event) -> None:
        streams = self._streams.get(tenant)
        if streams is not None:
            streams.discard(wake)
            if not streams:
                del self._streams[tenant]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="intake-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=5,
                    application_name="pgjobs-intake-listen",
                ) as conn:
                    await conn.execute(f'LISTEN "{ACTIVITY}"')
                    await conn.execute(f'LISTEN "{CREDENTIALS}"')
                    self._connected()
                    delay = 0.2
                    while True:
                        async for notify in conn.notifies(timeout=10.0):
                            self._dispatch(notify.channel, notify.payload)
                        await conn.execute("SELECT 1")  # a dead server shows up here
            except asyncio.CancelledError:
                self.connected.clear()
                raise
            except (psycopg.Error, OSError) as exc:
                if self.connected.is_set():
                    logger.warning("event=intake_listen_lost error=%s", type(exc).__name__)
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _connected(self) -> None:
        self._credentials.invalidate(None)
        self.connected.set()
        logger.info("event=intake_listen_connected")
        for streams in self._streams.values():
            for wake in streams:
                wake.set()

    def _dispatch(self, channel: str, payload: str) -> None:
        try:
            if channel == CREDENTIALS:
                self._credentials.invalidate(uuid.UUID(payload))
            elif channel == ACTIVITY:
                tenant = uuid.UUID(json.loads(payload)["tenant_id"])
                for wake in self._streams.get(tenant, ()):
                    wake.set()
        except (ValueError, KeyError, TypeError):
            logger.debug("event=intake_notify_ignored channel=%s", channel)
