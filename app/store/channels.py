"""NOTIFY channels and event payloads, named once.

Two kinds of channel, both carrying ids only (LISTEN is not under Row-Level Security, so no
job data ever travels in a notification; a listener reads the rows through RLS):

* ``dramatiq.<queue>.enqueue`` (dramatiq-pg's name): "there may be work in this queue".
  The payload is the oldest eta of the rows that became ready (``ETA_PAYLOAD``), or empty
  when unknown; PostgreSQL folds identical notifications of one transaction into one (the
  rows of one transaction share their eta, ``now()``).
* ``pgjobs.events``: lifecycle events, one notification per event, queue and statement:
  ``{"event": "completed", "queue": "webhooks", "ids": ["...", ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

EVENTS_CHANNEL = "pgjobs.events"

#: Every lifecycle event, in the order a job may go through them.
EVENTS = (
    "enqueued", "active", "progress", "completed", "failed", "retrying", "dead", "stalled",
    "rescued", "cancelled",
)
#: Events after which a job is finished.
TERMINAL_EVENTS = frozenset({"completed", "dead", "cancelled"})


def queue_channel(queue: str) -> str:
    """The wake-up channel of a queue (or of its delayed side, ``<queue>.DQ``)."""
    return f"dramatiq.{queue}.enqueue"


#: The payload of a queue's wake-up when rows became ready: their oldest eta (epoch
#: seconds), so consumers can claim from floors (``app.store.claim.CLAIM_FROM``). Empty for
#: a delayed side, whose consumer promotes by eta anyway. Other payloads mean "anywhere".
ETA_PAYLOAD = ("CASE WHEN queue_name LIKE '%%.DQ' THEN '' "
               "ELSE extract(epoch FROM eta)::text END")

#: Ids per notification: PostgreSQL refuses payloads over 8000 bytes.
IDS_PER_NOTIFY = 100


def notify_events(event: str, ids: str, queue: str) -> str:
    """SQL notifying ``pgjobs.events`` of ``event`` for one JSON array of ids (a few).

    ``ids`` is an SQL expression yielding a JSON array (e.g. ``json_build_array(id)``),
    ``queue`` one yielding the queue name (a ``.DQ`` suffix is dropped).
    """
    return (f"pg_notify('{EVENTS_CHANNEL}', json_build_object('event', {event}, 'queue', "
            f"regexp_replace({queue}, '\\.DQ$', ''), 'ids', {ids})::text)")


def announce(event: str, rows: str, *, ids: str = "message_id", queue: str = "queue_name"
             ) -> str:
    """A SELECT notifying ``pgjobs.events`` of ``event`` for every row of ``rows`` (a CTE),
    one notification per event, queue and ``IDS_PER_NOTIFY`` ids."""
    return f"""SELECT pg_notify('{EVENTS_CHANNEL}', json_build_object(
    'event', c.event, 'queue', c.queue, 'ids', json_agg(c.id))::text)
FROM (SELECT {event} AS event, regexp_replace({queue}, '\\.DQ$', '') AS queue, {ids} AS id,
             (row_number() OVER (PARTITION BY {queue}, {event}) - 1) / {IDS_PER_NOTIFY}
                 AS chunk
      FROM {rows}) c
GROUP BY c.event, c.queue, c.chunk"""


@dataclass(frozen=True)
class Event:
    """One job's event from ``pgjobs.events``: what happened to which job, nothing else."""

    event: str
    message_id: str
    queue: str


def parse_events(payload: str) -> Iterator[Event]:
    """The events of one notification; a malformed one yields nothing (never raises)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    event, queue, ids = data.get("event"), data.get("queue"), data.get("ids")
    if not isinstance(event, str) or not isinstance(queue, str) or not isinstance(ids, list):
        return
    for message_id in ids:
        if isinstance(message_id, str):
            yield Event(event, message_id, queue)
