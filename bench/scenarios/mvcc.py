"""MVCC pressure at a fixed load: ``idle_in_tx`` and ``active_readers`` (target 6).

The names are the ones public queue harnesses use. Both run one worker process at a steady
``mvcc_rate`` (400 jobs/s: ``stamp`` jobs, one per transaction, open-loop; ``bench.pacing``)
and compare a window under pressure with a clean window of the same load:

* ``idle_in_tx``: a session on the system's database takes an XID (``txid_current()``) and
  sits idle in its transaction for the whole window, so vacuum can remove no version the
  window leaves behind.
* ``active_readers``: ``mvcc_readers`` (4) REPEATABLE READ transactions stay open for the
  window, each scanning the system's job table (``count(*)``) again every 0.2 s.

Figures: completion rate (jobs finished during the window / its length) and pickup p99,
each as a ratio to the clean window; and the claim's shared buffers per call sampled every
``mvcc_sample_s`` (``bench.claimprobe``), whose last-quarter / first-quarter ratio says
whether the cost grows with the time held. The series is in the notes and the JSON. The
clean window is measured once per system and shared by both scenarios. The issue's hold is
10 minutes (``--long`` or ``--mvcc-minutes 10``); the default run holds 30 s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import psycopg

from bench.claimprobe import BufferSeries, ClaimSampler
from bench.context import Context
from bench.dbadmin import connect
from bench.pacing import latencies, paced, senders_for
from bench.results import Figure, percentile
from bench.systems.base import System

READER_PAUSE_S = 0.2


@dataclass
class Window:
    rate: float  # jobs completed per second
    p99: float | None
    offered: float  # jobs/s the enqueuer reached
    missing: int  # jobs that never started within 30 s after the window
    buffers: BufferSeries


Pressure = Callable[[System, str], AbstractContextManager[None]]


@contextmanager
def idle_in_tx(system: System, url: str) -> Iterator[None]:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT txid_current()")  # an XID, held until the rollback below
        try:
            yield
        finally:
            conn.rollback()


@contextmanager
def active_readers(system: System, url: str, readers: int = 4) -> Iterator[None]:
    stop = threading.Event()
    errors: list[str] = []
    table = system.job_tables[0]

    def read() -> None:
        try:
            with psycopg.connect(url) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                while not stop.is_set():
                    conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    stop.wait(READER_PAUSE_S)
                conn.rollback()
        except psycopg.Error as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=read, name=f"reader-{n}", daemon=True)
               for n in range(readers)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise RuntimeError(f"reader failed: {errors[0]}")


def window(ctx: Context, system: System, url: str, seconds: float, first_id: int,
           pressure: Pressure | None) -> Window:
    """One worker, ``seconds`` of steady load, optionally under ``pressure``."""
    plan = ctx.plan
    n = int(plan.mvcc_rate * seconds)
    workers = ctx.start(system, url, 1, "mvcc")
    try:
        ctx.wait_ready(system, url, workers)
        with (senders_for(lambda: system.enqueuer(url), "stamp") as senders,
              connect(url) as conn):
            held = pressure(system, url) if pressure else None
            if held is not None:
                held.__enter__()
            try:
                with ClaimSampler(system, url, plan.mvcc_sample_s) as sampler:
                    window_ = paced(senders, range(first_id, first_id + n), plan.mvcc_rate)
                    left = system.remaining(conn)
                elapsed = window_.ended - window_.started
            finally:
                if held is not None:
                    held.__exit__(None, None, None)
            lat = latencies(conn, window_.committed, timeout=30.0)
    finally:
        for w in workers:
            w.kill()
    return Window(
        rate=(len(window_.committed) - left) / max(elapsed, 1e-9),
        p99=percentile(lat, 99) if lat else None,
        offered=window_.rate,
        missing=len(window_.committed) - len(lat),
        buffers=sampler.series,
    )


def clean(ctx: Context, system: System) -> Window:
    key = ("mvcc_clean", system.key)
    if key not in ctx.cache:
        with ctx.database(system, "mvcc_clean") as url:
            ctx.cache[key] = window(ctx, system, url, ctx.plan.mvcc_clean_s, 0, None)
    result = ctx.cache[key]
    assert isinstance(result, Window)
    return result


def run_scenario(ctx: Context, name: str, pressure: Pressure) -> None:
    plan = ctx.plan
    for system in ctx.systems:
        if not ctx.takes_part(system, name):
            ctx.results.note(f"{name}: {system.key} left out (name it in --systems)")
            continue
        hold = (f"{plan.mvcc_hold_s / 60:.1f} min" if plan.mvcc_hold_s >= 60
                else f"{plan.mvcc_hold_s:.0f} s")

        def fig(metric: str, unit: str, higher: bool, tag: str = "",
                system: System = system) -> Figure:
            return ctx.results.add(Figure(name, metric, system.key, unit, higher,
                                          tag=f"{name}_{tag}" if tag else ""))

        comp = fig(f"completion rate vs clean, {hold} held (x)", "x", True, "completion")
        p99r = fig("pickup p99 vs clean (x)", "x", False, "p99_ratio")
        p99c = fig(f"pickup p99, clean @ {plan.mvcc_rate:g}/s (ms)", "ms", False)
        p99h = fig(f"pickup p99, held @ {plan.mvcc_rate:g}/s (ms)", "ms", False)
        bufs = fig("claim buffers/call, last quarter of the hold", "buffers", False)
        growth = fig("claim buffers/call, last / first quarter (x)", "x", False,
                     "buffers_growth")
        try:
            base = clean(ctx, system)
            with ctx.database(system, name) as url:
                held = window(ctx, system, url, plan.mvcc_hold_s, 1_000_000, pressure)
        except Exception as exc:
            comp.status, comp.note = "error", f"{type(exc).__name__}: {exc}"[:300]
            continue
        if base.rate:
            comp.values.append(held.rate / base.rate)
        comp.extra.update(clean_rate=base.rate, held_rate=held.rate, offered=held.offered)
        comp.note = (f"{held.rate:,.0f} jobs/s held vs {base.rate:,.0f} clean "
                     f"(offered {held.offered:,.0f}/s held, {base.offered:,.0f}/s clean)")
        if min(held.offered, base.offered) < 0.9 * plan.mvcc_rate:
            comp.status = "underpaced"  # the machine could not produce the fixed load
        for f, w in ((p99c, base), (p99h, held)):
            if w.p99 is not None:
                f.values.append(w.p99)
            if w.missing:
                f.status, f.note = "partial", f"{w.missing:,} jobs never started within 30 s"
        if base.p99 and held.p99 is not None:
            p99r.values.append(held.p99 / base.p99)
        series = held.buffers
        last = series.quarter(True)
        if last is not None:
            bufs.values.append(last)
            growth.values.append(series.growth() or 0.0)
            bufs.note = series.describe()
            bufs.extra["series"] = series.samples
            bufs.extra["clean_series"] = base.buffers.samples
            bufs.extra["source"] = series.source
        else:
            bufs.status = growth.status = "n/a"
            bufs.note = series.problem or "no samples"
        ctx.log(f"  {system.key} {name}: completion {comp.median or 0:.2f}x, p99 "
                f"{held.p99 or 0:.1f} ms vs {base.p99 or 0:.1f} ms, claim buffers "
                f"{series.describe(6) if series.samples else series.problem}")


def run_idle_in_tx(ctx: Context) -> None:
    run_scenario(ctx, "idle_in_tx", idle_in_tx)


def run_active_readers(ctx: Context) -> None:
    readers = ctx.plan.mvcc_readers

    def pressure(system: System, url: str) -> AbstractContextManager[None]:
        return active_readers(system, url, readers)

    run_scenario(ctx, "active_readers", pressure)

