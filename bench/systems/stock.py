"""The stock ``dramatiq_pg.PostgresBroker``: our starting point and first peer.

Its schema is the package's own ``schema.sql`` (psql variables substituted). It has no
batch or in-transaction enqueue API, so "one per transaction" is ``broker.enqueue`` (what
``actor.send`` does) and "batch" runs its own ENQUEUE statement for every job in one
transaction. It has no tenants either, so its ``write`` job is a plain insert.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from importlib import resources

import psycopg
from dramatiq import Message
from dramatiq.common import current_millis, dq_name
from dramatiq_pg import PostgresBroker
from dramatiq_pg.broker import QUERIES
from dramatiq_pg.utils import tidy4json, transaction
from psycopg2.extras import Json

from bench import sidetables
from bench.systems.base import QUEUE, Enqueuer, System
from bench.systems.dramatiq_common import THREADS, DramatiqPgTable, dramatiq_command, prometheus_env
from bench.tablefill import replicate


def schema_sql() -> str:
    """``dramatiq_pg/schema.sql`` as plain SQL (its psql ``\\set`` variables substituted)."""
    text = resources.files("dramatiq_pg").joinpath("schema.sql").read_text()
    values = dict(re.findall(r"^\\set (\w+) '([^']*)'", text, flags=re.M))
    text = re.sub(r"^\\set .*$", "", text, flags=re.M)
    return re.sub(r':"(\w+)"', lambda m: '"' + values[m.group(1)] + '"', text)


def job_args(kind: str, i: int, tenant: uuid.UUID | None) -> tuple[object, ...]:
    """Positional arguments of the stock actors (``write`` carries its tenant)."""
    return (i, str(tenant)) if kind == "write" else (i,)


class StockEnqueuer(Enqueuer):
    def __init__(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> None:
        super().__init__(url, tenants)
        self.broker = PostgresBroker(url=url)
        self.broker.declare_queue(QUEUE)

    def message(self, kind: str, i: int) -> Message:
        tenant = self.tenant_of(i) if kind == "write" else None
        return Message(
            queue_name=QUEUE,
            actor_name=f"bench.{kind}",
            args=job_args(kind, i, tenant),
            kwargs={},
            options={},
        )

    def one(self, kind: str, i: int) -> None:
        self.broker.enqueue(self.message(kind, i))

    def many(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        with transaction(self.broker.pool) as curs:
            for i in ids:
                message = self.message(kind, i)
                if delay_s:
                    message = message.copy(queue_name=dq_name(QUEUE))
                    message.options["eta"] = current_millis() + int(delay_s * 1000)
                curs.execute(
                    QUERIES.ENQUEUE,
                    (
                        message.queue_name,
                        message.message_id,
                        Json(tidy4json(message)),
                        message.message_id,
                    ),
                )

    def load(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        """The rows its ENQUEUE would write, in bulk and without NOTIFY (no one listens yet:
        the stock worker reads every pending row when it starts)."""
        rows = []
        for i in ids:
            message = self.message(kind, i)
            if delay_s:
                message = message.copy(queue_name=dq_name(QUEUE))
                message.options["eta"] = current_millis() + int(delay_s * 1000)
            rows.append((message.message_id, message.queue_name, json.dumps(tidy4json(message))))
        with psycopg.connect(self.url) as conn, conn.cursor() as cur:
            with cur.copy(
                "COPY dramatiq.queue (message_id, queue_name, state, message)"
                " FROM STDIN"
            ) as copy:
                for message_id, queue_name, body in rows:
                    copy.write_row((message_id, queue_name, "queued", body))

    def close(self) -> None:
        self.broker.close()
        self.broker.pool.closeall()


class Stock(DramatiqPgTable, System):
    key = "stock"
    label = "stock dramatiq-pg"
    slow = True
    pulls_delayed = True
    orphan_rescue = (
        "a running worker finds orphans only by a random rescan (1 chance in 301 per idle "
        "consumer iteration, ~1/s), so the survivor figure is luck; a restarted worker rescans "
        "at start"
    )
    job_tables = ("dramatiq.queue",)
    claim_note = "it consumes the message ids its NOTIFYs name, one UPDATE each (no claim scan)"
    # The scenarios it had before issue 14; the new ones only when named in --systems (its
    # lock pile-up and ~1 s rescans would spend the time budget on a known result).
    scenarios = frozenset({"enqueue", "drain", "backlog", "delayed", "orphan"})

    def config(self) -> str:
        return (
            f"dramatiq CLI, {THREADS} threads/process, dramatiq default middleware "
            "(incl. Prometheus exposition server), PostgresBroker(url=...) defaults"
        )

    def install(self, url: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema_sql())
            sidetables.install(conn)

    def enqueuer(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> Enqueuer:
        return StockEnqueuer(url, tenants)

    def worker_commands(self, processes: int, concurrency: int | None = None) -> list[list[str]]:
        return [dramatiq_command("bench.systems.stock_actors", processes, concurrency)]

    def worker_env(self, url: str) -> dict[str, str]:
        return {**super().worker_env(url), **prometheus_env()}

    def fill(self, conn: psycopg.Connection, finished: int, delayed: int) -> None:
        """Its finished rows, and delayed ones in ``bench.DQ`` (which its workers pull into
        memory, an advisory lock each: more than the lock table holds stalls it)."""
        replicate(conn, "dramatiq.queue", "state = 'done'", finished,
                  {"message_id": "gen_random_uuid()"})
        replicate(conn, "dramatiq.queue", f"queue_name = '{dq_name(QUEUE)}'", delayed,
                  {"message_id": "gen_random_uuid()"})

    def held_in_worker(self, conn: psycopg.Connection) -> int:
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE state = 'consumed' AND queue_name = %s",
            (dq_name(QUEUE),),
        ).fetchone()
        return int(row[0]) if row else 0
