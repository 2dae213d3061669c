"""Live updates: ONE listening connection per dashboard process, fanned out to every open tab.

A listener thread LISTENs on ``pgjobs.events`` (job lifecycle, ids only) and
``pgjobs.dashboard`` (bulk progress). Open tabs subscribe to a *feed*: one page's live part
for one viewer scope (all operators share one; each tenant has its own) and one set of page
parameters. A feed re-renders at most once per ``interval`` when an event concerns it, reads
its rows under the viewer's role (so a tenant's feed never shows another tenant's job, and
an event about another tenant's job does not even re-render it), and pushes the same HTML to
every tab subscribed. The database sees one read per feed and interval, not one per tab.

LISTEN needs a session: behind a transaction pooler the listener connects with the
application role's direct URL (``APP_DIRECT_URL``), and the dashboard refuses to start
without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from app.db.connections import session_url
from app.jobs.events import EVENTS_CHANNEL
from app.store.channels import parse_events
from app.store.dashboard import BULK_CHANNEL

logger = logging.getLogger("pgjobs.dashboard")

Payload = dict[str, Any]
#: Renders a feed's fragments: SSE event name -> HTML. Runs in a worker thread.
Render = Callable[[], dict[str, str]]
#: Whether any of these job ids is the viewer's (read under the viewer's role).
Relevant = Callable[[list[str]], bool]


class Listener(threading.Thread):
    """LISTEN on one connection; hand every notification to ``deliver``; reconnect on failure."""

    def __init__(self, url: str, deliver: Callable[[Payload], None]) -> None:
        super().__init__(name="dashboard-listener", daemon=True)
        self.url = session_url(url, "the dashboard's live updates (LISTEN)")
        self.deliver = deliver
        self.stopping = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True,
                                     application_name="pgjobs-dashboard-listen") as conn:
                    for channel in (EVENTS_CHANNEL, BULK_CHANNEL):
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connected.set()
                    logger.info("event=listening channels=%s,%s", EVENTS_CHANNEL, BULK_CHANNEL)
                    delay = 0.5
                    while not self.stopping.is_set():
                        for notify in conn.notifies(timeout=1.0):
                            self._handle(notify.payload)
            except psycopg.Error as exc:
                self.connected.clear()
                logger.warning("event=listen_failed retry_in=%.1f error=%r", delay,
                               type(exc).__name__)
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)

    def _handle(self, raw: str) -> None:
        try:
            payload = json.loads(raw)
        except ValueError:
            return  # malformed notifications are ignored (anyone may NOTIFY)
        if not isinstance(payload, dict):
            return
        if "ids" in payload:  # the job store's events: one per job to the feeds
            for event in parse_events(raw):
                self.deliver({"event": event.event, "message_id": event.message_id,
                              "queue": event.queue})
            return
        self.deliver(payload)

    def stop(self) -> None:
        self.stopping.set()


@dataclass(eq=False)
class Feed:
    key: tuple[Any, ...]
    render: Render
    #: Which notifications concern this feed (by event, queue, job id or bulk id).
    matches: Callable[[Payload], bool]
    #: For tenant feeds: check the event's jobs are the tenant's before re-rendering.
    relevant: Relevant | None = None
    #: Re-render this often even without events (ages, heartbeats), None: only on events.
    every: float | None = None
    subscribers: set[asyncio.Queue[dict[str, str]]] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Hub:
    """Feeds by key, in the event loop; ``publish`` may be called from any thread."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.feeds: dict[tuple[Any, ...], Feed] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.renders = 0  # feeds rendered, for tests and the bench

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish(self, payload: Payload) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._dispatch, payload)

    def _dispatch(self, payload: Payload) -> None:
        for feed in list(self.feeds.values()):
            if feed.matches(payload):
                if "message_id" in payload:
                    feed.pending.append(str(payload["message_id"]))
                feed.dirty.set()

    @contextlib.asynccontextmanager
    async def subscribe(self, feed: Feed) -> AsyncIterator[asyncio.Queue[dict[str, str]]]:
        """A queue of rendered fragments for one tab, while it stays open."""
        feed = self.feeds.setdefault(feed.key, feed)
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(maxsize=4)
        feed.subscribers.add(queue)
        feed.dirty.set()  # what changed between the page's render and this connection
        if feed.task is None or feed.task.done():
            feed.task = asyncio.get_running_loop().create_task(self._run(feed))
        try:
            yield queue
        finally:
            feed.subscribers.discard(queue)
            if not feed.subscribers:
                self.feeds.pop(feed.key, None)
                feed.task.cancel()

    async def _run(self, feed: Feed) -> None:
        while feed.subscribers:
            try:
                await asyncio.wait_for(feed.dirty.wait(), timeout=feed.every)
            except TimeoutError:
                pass
            feed.dirty.clear()
            ids, feed.pending = feed.pending, []
            try:
                if ids and feed.relevant is not None and not await asyncio.to_thread(
                        feed.relevant, list(dict.fromkeys(ids))):
                    continue
                fragments = await asyncio.to_thread(feed.render)
            except Exception:
                logger.exception("event=live_render_failed feed=%s", feed.key[0])
                await asyncio.sleep(max(self.interval, 1.0))
                continue
            self.renders += 1
            for queue in list(feed.subscribers):
                if queue.full():  # a slow tab gets the newest state, not a backlog
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(fragments)
            await asyncio.sleep(self.interval)


def sse(fragments: dict[str, str]) -> str:
    """Server-sent events, one per fragment (every line of the HTML as a data line)."""
    out = []
    for name, html in fragments.items():
        lines = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
        out.append(f"event: {name}\n{lines}\n\n")
    return "".join(out)
