"""Worker module for the stock ``dramatiq_pg.PostgresBroker`` (run by ``dramatiq``).

The broker is built exactly as its README says, with dramatiq's default middleware, so the
figures are what a user of the stock package gets.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq_pg import PostgresBroker

from bench import asynchttp, sidetables

broker = PostgresBroker(url=os.environ["BENCH_WORKER_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench.noop", queue_name="bench")
def noop(i: int) -> None:
    pass


@dramatiq.actor(actor_name="bench.write", queue_name="bench")
def write(i: int, tenant: str) -> None:
    sidetables.plain_write(i, tenant)


@dramatiq.actor(actor_name="bench.stamp", queue_name="bench")
def stamp(i: int) -> None:
    sidetables.stamp(i)


@dramatiq.actor(actor_name="bench.hang", queue_name="bench")
def hang(i: int) -> None:
    sidetables.hang_once(i)


@dramatiq.actor(actor_name="bench.effect", queue_name="bench")
def effect(i: int) -> None:
    sidetables.effect(i)


@dramatiq.actor(actor_name="bench.io", queue_name="bench")
def io(i: int) -> None:
    asynchttp.get(i)
    sidetables.effect(i)
