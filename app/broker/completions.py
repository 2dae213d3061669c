"""Group commit of job completions.

Worker threads finish jobs faster than one UPDATE per job can keep up with, so the thread
that finds no flush in progress writes every completion waiting at that moment in one
statement; the others return at once. Under light load each completion is written
immediately; under heavy load they batch themselves. Jobs whose actor used the database
do not come here: their completion committed with their own transaction.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from psycopg.types.json import Jsonb

logger = logging.getLogger(__name__)

Flush = Callable[[list[uuid.UUID], list[Jsonb | None]], None]


class GroupCompleter:
    def __init__(self, flush: Flush) -> None:
        self._flush = flush
        self._pending: list[tuple[uuid.UUID, Any]] = []
        self._pending_lock = threading.Lock()
        self._flushing = threading.Lock()

    def add(self, message_id: str | uuid.UUID, result: Any) -> None:
        with self._pending_lock:
            self._pending.append((uuid.UUID(str(message_id)), result))
        self.drain()

    def drain(self) -> None:
        """Write what is pending; failures keep it pending for the next call (never raises).

        The heartbeat thread calls this too, so completions held back by a database outage
        are written once it is back; if the process dies first, rescue re-runs those jobs.
        """
        # Whoever holds the flush lock re-checks after releasing it, so a completion added
        # while a flush was running is never stranded.
        while self._pending and self._flushing.acquire(blocking=False):
            try:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                if batch:
                    self._write(batch)
            finally:
                self._flushing.release()

    def _write(self, batch: list[tuple[uuid.UUID, Any]]) -> None:
        try:
            self._flush(
                [mid for mid, _ in batch],
                [None if r is None else Jsonb(r) for _, r in batch],
            )
        except Exception:
            with self._pending_lock:
                self._pending[:0] = batch
            logger.warning("event=completion_flush_failed pending=%d", len(batch), exc_info=True)
