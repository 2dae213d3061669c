"""Faults at a steady load: lost and duplicated effects, time to recover (target 7).

Each case enqueues ``effect`` jobs (one row per job in ``bench_effect``, unique on the job;
a second run counts in ``runs``) at ``chaos_rate`` for ``chaos_seconds``, one per
transaction, and injects its fault ``chaos_fault_at_s`` into the window:

* ``clean``: none (the baseline the others are divided by).
* ``pg_backend_kill``: ``pg_terminate_backend`` of every backend the workers hold on the
  system's database (the bench's own connections are named ``bench-harness`` and spared).
* ``postgres_restart``: a fast shutdown and start of the cluster (a private one,
  ``bench.cluster``: the shared development server is never restarted).
* ``worker_sigkill``: two worker processes (process groups) run; one is SIGKILLed.

Each job goes on for 100 ms after making its effect, so a fault finds jobs whose effect is
written and whose completion is not: a system that commits them apart runs such a job again
(a duplicated effect); ours commits both in the job's transaction.

The enqueuer reconnects when its connection fails; a job whose enqueue raised is not
expected (its commit may or may not have happened: such ids count for duplicates only).
After the window, the case waits up to ``chaos_deadline_s`` for every job to have its
effect. Figures: completion (effects / committed jobs) as a ratio to the clean case, lost
effects (committed jobs with none), duplicated effects (extra runs), and time to recover:
from the fault to the effect of the last job it could touch (every job committed before the
fault was over: in flight, claimed, queued); the note adds when the first job enqueued after
the fault ran.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from bench.cluster import PrivateCluster
from bench.context import Context
from bench.dbadmin import Databases, connect
from bench.pacing import SENDERS, Paced, paced
from bench.procs import Worker, tree
from bench.results import Figure
from bench.sidetables import EFFECT_HOLD_ENV
from bench.systems.base import Enqueuer, System
from bench.waiting import CANCELLED

SCENARIO = "chaos"
FAULTS = ("pg_backend_kill", "postgres_restart", "worker_sigkill")
HARNESS = "bench-harness"
HOLD_MS = 100  # each job goes on this long after its effect (see sidetables.EFFECT_HOLD_S)


@dataclass
class Outcome:
    committed: int
    done: int
    duplicated: int
    failed_enqueues: int
    dead: int
    recover_s: float | None  # fault -> last effect of the jobs committed until it was over
    resume_s: float | None  # fault -> first effect of a job committed after it
    all_done_s: float | None
    fault_note: str

    @property
    def completion(self) -> float:
        return self.done / self.committed if self.committed else 0.0


class Reconnecting:
    """An enqueuer that is replaced by a fresh one after an error (a restart, a kill)."""

    def __init__(self, make: Callable[[], Enqueuer], deadline_s: float) -> None:
        self.make, self.deadline_s = make, deadline_s
        self.enq: Enqueuer | None = make()

    def one(self, i: int) -> None:
        if self.enq is None:
            self.enq = self._reconnect()
        self.enq.one("effect", i)

    def broken(self, exc: Exception) -> None:
        if self.enq is not None:
            try:
                self.enq.close()
            except Exception:
                pass
        self.enq = None

    def _reconnect(self) -> Enqueuer:
        deadline = time.monotonic() + self.deadline_s
        while True:
            try:
                return self.make()
            except Exception:
                if time.monotonic() > deadline or CANCELLED.is_set():
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        if self.enq is not None:
            self.enq.close()


def effects(url: str, lo: int, hi: int) -> list[tuple[int, int, float]]:
    """``(i, runs, at)`` of the effects of ids ``lo..hi``; [] while the server is away."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            return conn.execute(
                "SELECT i, runs, at FROM bench_effect WHERE i BETWEEN %s AND %s", (lo, hi)
            ).fetchall()
    except psycopg.OperationalError:
        return []


def busiest(url: str, groups: list[list[Worker]]) -> list[Worker]:
    """The worker group that made the latest effect (so the kill finds jobs in flight)."""
    with connect(url) as conn:
        row = conn.execute("SELECT pid FROM bench_effect ORDER BY at DESC LIMIT 1").fetchone()
    if row:
        for group in groups:
            if any(int(row[0]) in tree(w.pid) for w in group):
                return group
    return groups[0]


def terminate_workers(admin: str, url: str) -> str:
    dbname = psycopg.conninfo.conninfo_to_dict(url).get("dbname")
    with connect(admin) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            " AND coalesce(application_name, '') <> %s",
            (dbname, HARNESS),
        ).fetchall()
    return f"{sum(1 for r in rows if r[0])} backends terminated"


def run_case(
    ctx: Context, system: System, url: str, tenants: list[uuid.UUID], fault: str,
    cluster: PrivateCluster | None, admin: str,
) -> Outcome:
    plan = ctx.plan
    env = {EFFECT_HOLD_ENV: str(HOLD_MS)}
    groups = [ctx.start(system, url, 1, f"{SCENARIO}-{fault}-a", extra_env=env)]
    if fault == "worker_sigkill":
        groups.append(ctx.start(system, url, 1, f"{SCENARIO}-{fault}-b", extra_env=env))
    every = [w for g in groups for w in g]
    try:
        for group in groups:
            ctx.wait_ready(system, url, every, pid_in=group if len(groups) > 1 else None)
        n = int(plan.chaos_rate * plan.chaos_seconds)
        fault_at: list[float] = []
        notes: list[str] = []

        fault_end: list[float] = []

        def inject() -> None:
            fault_at.append(time.time())
            try:
                hit()
            finally:
                fault_end.append(time.time())

        def hit() -> None:
            if fault == "pg_backend_kill":
                notes.append(terminate_workers(admin, url))
            elif fault == "postgres_restart":
                assert cluster is not None
                t0 = time.monotonic()
                cluster.stop()
                cluster.start()
                notes.append(f"server down and back in {time.monotonic() - t0:.1f}s")
            elif fault == "worker_sigkill":
                victim = busiest(url, groups)
                victim[0].kill()
                notes.append(f"one of two worker processes SIGKILLed ({victim[0].name}, "
                             "the one that made the latest effect)")

        timer = threading.Timer(plan.chaos_fault_at_s, inject) if fault != "clean" else None
        senders = [Reconnecting(lambda: system.enqueuer(url, tenants), deadline_s=60.0)
                   for _ in range(SENDERS)]
        try:
            if timer:
                timer.start()
            window: Paced = paced([s.one for s in senders], range(n), plan.chaos_rate,
                                  on_error=lambda k, i, exc: senders[k].broken(exc))
            if timer:
                timer.join()
        finally:
            for s in senders:
                s.close()
        committed = set(window.committed)
        deadline = time.monotonic() + plan.chaos_deadline_s
        rows = effects(url, 0, n)
        while not CANCELLED.is_set() and time.monotonic() < deadline:
            if committed <= {i for i, _, _ in rows}:
                break
            time.sleep(0.2)
            rows = effects(url, 0, n)
        done = {i: (runs, at) for i, runs, at in rows}
        t_fault = fault_at[0] if fault_at else window.started
        t_end = fault_end[0] if fault_end else t_fault
        # Jobs the fault could touch: committed before it was over. Recovered when the last
        # of them has its effect; resumed when a job enqueued after it has.
        touched = [i for i in committed if window.committed[i] <= t_end]
        recovered = (max(0.0, max(done[i][1] for i in touched) - t_fault)
                     if touched and all(i in done for i in touched) else None)
        after = [at for i, (_, at) in done.items()
                 if i in committed and window.committed[i] > t_end]
        complete = committed <= set(done)
        try:
            with connect(url) as conn:
                dead = system.failed(conn)
        except psycopg.Error:
            dead = -1
        return Outcome(
            committed=len(committed),
            done=len(committed & set(done)),
            duplicated=sum(runs - 1 for runs, _ in done.values()),
            failed_enqueues=len(window.failed),
            dead=dead,
            recover_s=recovered if fault_at else None,
            resume_s=(min(after) - t_fault) if after and fault_at else None,
            all_done_s=(max(at for _, at in done.values()) - t_fault)
            if complete and done and fault_at else None,
            fault_note="; ".join(notes),
        )
    finally:
        for w in every:
            w.kill()


@contextmanager
def case_database(
    ctx: Context, system: System, fault: str, cluster: PrivateCluster | None
) -> Iterator[tuple[str, str]]:
    """``(url, admin)`` of a fresh database for the case, on the private cluster for a
    restart."""
    if fault == "postgres_restart":
        assert cluster is not None
        dbs = Databases(cluster.url)
        with dbs.fresh(f"bench_{system.key}_chaos") as url:
            system.install(url)
            yield url, cluster.url
        return
    with ctx.database(system, f"{SCENARIO}_{fault}") as url:
        yield url, ctx.dbs.admin


def run(ctx: Context) -> None:
    systems = [s for s in ctx.systems if ctx.takes_part(s, SCENARIO) and "effect" in s.kinds]
    for s in ctx.systems:
        if s not in systems:
            ctx.results.note(f"{SCENARIO}: {s.key} left out (name it in --systems)")
    if not systems:
        return
    cluster = PrivateCluster()
    try:
        cluster.start()
        for system in systems:
            run_system(ctx, system, cluster)
    finally:
        cluster.destroy()


def run_system(ctx: Context, system: System, cluster: PrivateCluster) -> None:
    base_fig = ctx.results.add(Figure(SCENARIO, "clean: completion (effects / jobs)",
                                      system.key, "x", True))
    outcomes: dict[str, Outcome] = {}
    for fault in ("clean", *FAULTS):
        try:
            with case_database(ctx, system, fault, cluster) as (url, admin):
                tenants = system.make_tenants(url, ctx.plan.write_tenants)
                outcomes[fault] = run_case(ctx, system, url, tenants, fault,
                                           cluster if fault == "postgres_restart" else None,
                                           admin)
        except Exception as exc:  # one case failing must not hide the others
            ctx.results.note(f"{SCENARIO} / {system.key} / {fault}: {type(exc).__name__}: "
                             f"{exc}"[:400])
    clean = outcomes.get("clean")
    if clean:
        base_fig.values.append(clean.completion)
    for fault in FAULTS:
        out = outcomes.get(fault)
        figs = {
            "completion": Figure(SCENARIO, f"{fault}: completion vs clean (x)", system.key,
                                 "x", True),
            "lost": Figure(SCENARIO, f"{fault}: lost effects", system.key, "jobs", False),
            "duplicated": Figure(SCENARIO, f"{fault}: duplicated effects", system.key, "jobs",
                                 False),
            "recover": Figure(SCENARIO, f"{fault}: time to recover (s)", system.key, "s",
                              False),
        }
        for name, fig in figs.items():
            fig.tag = f"chaos_{fault}_{name}"
            ctx.results.add(fig)
        if out is None:
            for fig in figs.values():
                fig.status = "error"
            continue
        if clean and clean.completion:
            figs["completion"].values.append(out.completion / clean.completion)
        figs["lost"].values.append(out.committed - out.done)
        figs["duplicated"].values.append(out.duplicated)
        if out.recover_s is not None:
            figs["recover"].values.append(out.recover_s)
        else:
            figs["recover"].status = "not recovered"
        figs["completion"].note = (
            f"{out.done:,} of {out.committed:,} jobs made their effect; {out.fault_note}"
            + (f"; {out.failed_enqueues} enqueues failed during the fault"
               if out.failed_enqueues else "")
            + (f"; {out.dead} dead letters" if out.dead else "")
            + (f"; first new job done {out.resume_s:.2f}s after the fault"
               if out.resume_s is not None else "; no job enqueued after the fault ran")
            + ("" if out.all_done_s is not None else "; not all done by the deadline")
        )
        ctx.log(f"  {system.key} {fault}: {out.done}/{out.committed} done, "
                f"{out.duplicated} duplicated, recover "
                f"{out.recover_s if out.recover_s is None else round(out.recover_s, 2)}s; "
                f"{out.fault_note}")
