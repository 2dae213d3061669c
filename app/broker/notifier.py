"""One LISTEN connection per worker process, whatever the number of queues.

The notifier thread listens on every consumed queue's channel (and its delayed side's) and
wakes that queue's consumer. Consumers never hold a connection while idle, so a process
holds one listening connection and one claim connection in all (plus its pools), instead of
two per queue. After a reconnect every consumer is woken: notifications sent while nobody
listened are lost, so each consumer claims once to catch up.

LISTEN needs a session: behind a transaction pooler the notifier connects with the worker
role's direct URL (``WORKER_DIRECT_URL``), and without one the broker cannot be built.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from psycopg import sql

from app.db.connections import connect, session_url
from app.store.channels import queue_channel

logger = logging.getLogger(__name__)

#: Longest wait in LISTEN before the thread looks for new subscriptions and stop requests.
TICK = 0.5


class Wakeup:
    """A queue's doorbell: set by the notifier, waited on by the queue's consumer.

    A queue's notification may carry the oldest eta (epoch seconds) of the rows that became
    ready: the consumer lowers its claim floors to it. Any other payload (rows re-queued by
    a rescue, a hand-back or an operator, or notifications missed while disconnected)
    means "behind any floor": the consumer claims from the oldest row once.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        #: Set when the queue's delayed side was notified: promote due rows now.
        self.delayed = False
        self._lock = threading.Lock()
        self._oldest: float | None = None
        self._anywhere = False

    def ring(self, delayed: bool = False, payload: str | None = "") -> None:
        if delayed:
            self.delayed = True
        else:
            self._note(payload)
        self.event.set()

    def ring_all(self) -> None:
        """Rows may have become ready anywhere (notifications were missed)."""
        self.delayed = True
        self._note(None)
        self.event.set()

    def _note(self, payload: str | None) -> None:
        try:
            eta = float(payload) if payload else None
        except ValueError:
            eta = None
        with self._lock:
            # Anyone may NOTIFY: a payload that is no plausible epoch means "anywhere" (a
            # claim from the oldest row, as without floors), never an error.
            if eta is None or not 0.0 <= eta < 1e11:
                self._anywhere = True
            elif self._oldest is None or eta < self._oldest:
                self._oldest = eta

    def take_hint(self) -> tuple[bool, float | None]:
        """(rows may be anywhere, oldest announced eta) since the last call."""
        with self._lock:
            hint = (self._anywhere, self._oldest)
            self._anywhere, self._oldest = False, None
        return hint


#: What the notifier is, in the error raised when it has no session URL.
LISTENING = "the workers' LISTEN connection"


class Notifier:
    def __init__(self, url: str) -> None:
        self.url = url
        #: Resolved now, so a pooled URL without a direct one fails where the broker is built.
        self.session_url = session_url(url, LISTENING)
        self._wakeups: dict[str, Wakeup] = {}
        self._channels: dict[str, tuple[Wakeup, bool]] = {}
        self._listening: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def subscribe(self, queue: str) -> Wakeup:
        """The wake-up of ``queue``; starts the notifier thread on first use."""
        with self._lock:
            wakeup = self._wakeups.get(queue)
            if wakeup is None:
                wakeup = self._wakeups[queue] = Wakeup()
                self._channels[queue_channel(queue)] = (wakeup, False)
                self._channels[queue_channel(f"{queue}.DQ")] = (wakeup, True)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="pgjobs-notifier",
                                                daemon=True)
                self._thread.start()
        return wakeup

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen_loop()
            except Exception as exc:
                logger.warning("event=notifier_disconnected error=%r", exc)
                self._close()
                self._stop.wait(1.0)

    def _listen_loop(self) -> None:
        conn = self._conn = connect(self.session_url, name="pgjobs-listener")
        self._listening = set()
        self._subscribe_new(conn)
        for wakeup in list(self._wakeups.values()):
            wakeup.ring_all()  # notifications may have been missed
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=TICK):
                target = self._channels.get(notify.channel)
                if target is not None:
                    target[0].ring(delayed=target[1], payload=notify.payload)
            self._subscribe_new(conn)
        self._close()

    def _subscribe_new(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            new = [c for c in self._channels if c not in self._listening]
        for channel in new:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._listening.add(channel)
        if new:
            # What was enqueued before the LISTEN took effect would otherwise wait for a poll.
            for channel in new:
                self._channels[channel][0].ring_all()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                logger.debug("event=notifier_close_failed", exc_info=True)
        self._conn = None
