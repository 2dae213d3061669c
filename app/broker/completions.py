"""Group commit of job completions.

Worker threads finish jobs faster than one UPDATE per job can keep up with, so the thread
that finds no flush in progress writes every completion waiting at that moment in one
statement; the others return at once. Under light load each completion is written
immediately; under heavy load they batch themselves. Jobs whose actor used the database
do not come here: their completion committed with their own transaction.

A batch the database refuses for its data (not for a lost connection) is split: each
completion is written alone, and one that still fails is handed to ``on_poison`` (the
broker dead-letters that job), so one bad value never stalls the others.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb

from app.broker.connections import DISCONNECTS

logger = logging.getLogger(__name__)

#: ids, results, when each attempt started running (None: unknown), and the batch's earliest
#: claim on the database's clock (None: a claim time is unknown).
Flush = Callable[
    [list[uuid.UUID], list[Jsonb | None], list[datetime | None], datetime | None], None]
Poison = Callable[[uuid.UUID, BaseException], None]


class _Done(NamedTuple):
    message_id: uuid.UUID
    result: Any
    started: datetime | None
    claimed: datetime | None


class GroupCompleter:
    def __init__(self, flush: Flush, on_poison: Poison) -> None:
        self._flush = flush
        self._on_poison = on_poison
        self._pending: list[_Done] = []
        self._pending_lock = threading.Lock()
        self._flushing = threading.Lock()

    def add(self, message_id: str | uuid.UUID, result: Any,
            started: datetime | None = None, claimed: datetime | None = None) -> None:
        """``claimed``: the claim's time on the database's clock (None: unknown)."""
        with self._pending_lock:
            self._pending.append(_Done(uuid.UUID(str(message_id)), result, started, claimed))
        self.drain()

    @property
    def pending(self) -> int:
        return len(self._pending)

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

    def _write(self, batch: list[_Done]) -> None:
        try:
            claims = [d.claimed for d in batch if d.claimed is not None]
            since = min(claims) if len(claims) == len(batch) else None
            self._flush([d.message_id for d in batch], [_json(d.result) for d in batch],
                        [d.started for d in batch], since)
        except DISCONNECTS:
            self._keep(batch)
        except psycopg.Error as exc:
            if len(batch) == 1:
                self._poisoned(batch[0].message_id, exc)
                return
            logger.warning("event=completion_batch_refused size=%d error=%r: writing each "
                           "alone", len(batch), type(exc).__name__)
            for item in batch:
                self._write([item])
        except Exception:
            self._keep(batch)

    def _keep(self, batch: list[_Done]) -> None:
        with self._pending_lock:
            self._pending[:0] = batch
        logger.warning("event=completion_flush_failed pending=%d", len(batch), exc_info=True)

    def _poisoned(self, message_id: uuid.UUID, exc: BaseException) -> None:
        try:
            self._on_poison(message_id, exc)
        except Exception:
            logger.error("event=poison_completion_unresolved message_id=%s", message_id,
                         exc_info=True)


def _json(result: Any) -> Jsonb | None:
    return None if result is None else Jsonb(result)
