"""How much each scenario does: sized so one full run fits in ten minutes on 2 cores.

``--quick`` divides the counts by ten (a smoke test of the whole pipeline, not figures to
quote); ``--long`` switches to the issue's design sizes (10-minute MVCC holds, 1M rows),
which take far longer than ten minutes. Timeouts that are properties of the systems (lease
and heartbeat lengths) cannot shrink with it, so the orphan scenario keeps a deadline long
enough to observe them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Plan:
    repeats: int = 3
    enqueue_each: int = 500  # one transaction per job
    enqueue_batch: int = 5_000  # in transactions of `batch_size`
    batch_size: int = 500
    drain_jobs: int = 20_000  # no-op jobs, as the issue specifies
    drain_write_jobs: int = 2_000  # jobs that write a row
    drain_deadline_s: float = 12.0  # per repeat
    write_tenants: int = 10
    latency_rates: tuple[float, ...] = (50.0, 200.0, 500.0)  # jobs/s, steady (latency_load)
    latency_seconds: float = 2.0  # per repeat and rate
    write_threads: tuple[int, ...] = (1, 2, 8)  # write_jobs: worker threads (pgbench clients)
    write_jobs: int = 2_000  # per repeat and thread count
    table_rows: int = 100_000  # table_size: finished rows put in the job table first
    table_delayed: int = 10_000  # table_size: delayed rows (due in an hour)
    table_drain_jobs: int = 10_000  # table_size: no-op jobs drained, empty vs full
    mvcc_rate: float = 400.0  # idle_in_tx / active_readers: steady jobs/s
    mvcc_clean_s: float = 10.0  # the clean run each pressure run is compared with
    mvcc_hold_s: float = 30.0  # how long the XID is held / the readers scan
    mvcc_sample_s: float = 3.0  # claim buffers probe interval
    mvcc_readers: int = 4
    chaos_rate: float = 100.0  # jobs/s while a fault happens
    chaos_seconds: float = 5.0  # enqueueing time per fault; the fault is at chaos_fault_at_s
    chaos_fault_at_s: float = 2.0
    chaos_deadline_s: float = 75.0  # after the last enqueue, for every job to finish
    io_delay_ms: float = 50.0  # io_bound: what the local HTTP server waits per request
    io_concurrency: tuple[int, ...] = (8, 32, 128)  # jobs in flight per process
    io_seconds: float = 2.0  # jobs per level = what ideal concurrency would do in this time
    io_max_jobs: int = 3_000
    backlog_jobs: int = 40_000
    backlog_processes: int = 2
    backlog_deadline_s: float = 45.0
    delayed_jobs: int = 20_000
    delayed_hours: float = 1.0
    rss_window_s: float = 2.0
    settle_deadline_s: float = 15.0
    orphan_deadline_s: float = 62.0
    #: Systems known to be far slower (stock: lock pile-up; procrastinate) stop draining here,
    #: so one slow system cannot eat the run's time budget; their figure is then partial.
    slow_deadline_s: float = 8.0
    stall_s: float = 20.0
    pgbench_seconds: float = 2.0
    pgbench_clients: tuple[int, ...] = (1, 2, 8)
    stub_jobs: int = 5_000
    feature_jobs: int = 5_000  # per drain, with and without limits
    ready_timeout_s: float = 60.0

    def quick(self) -> Plan:
        return replace(
            self,
            repeats=min(self.repeats, 2),
            enqueue_each=100,
            enqueue_batch=1_000,
            batch_size=250,
            drain_jobs=1_000,
            drain_write_jobs=300,
            drain_deadline_s=10.0,
            latency_seconds=1.0,
            write_threads=(1, 8),
            write_jobs=300,
            table_rows=20_000,
            table_delayed=2_000,
            table_drain_jobs=2_000,
            mvcc_clean_s=5.0,
            mvcc_hold_s=8.0,
            mvcc_sample_s=2.0,
            chaos_seconds=4.0,
            chaos_fault_at_s=1.5,
            chaos_deadline_s=45.0,
            io_concurrency=(8, 32),
            io_seconds=1.0,
            io_max_jobs=800,
            backlog_jobs=5_000,
            backlog_deadline_s=20.0,
            delayed_jobs=5_000,
            rss_window_s=0.5,
            settle_deadline_s=10.0,
            orphan_deadline_s=25.0,
            slow_deadline_s=4.0,
            stall_s=10.0,
            pgbench_seconds=1.0,
            pgbench_clients=(1, 8),
            stub_jobs=1_000,
            feature_jobs=1_000,
        )

    def long(self) -> Plan:
        """The issue's design sizes: 10-minute MVCC holds, 1,000,000 finished and 100,000
        delayed rows. Far over the 10-minute budget; for a quiet machine and time to spare."""
        return replace(
            self,
            table_rows=1_000_000,
            table_delayed=100_000,
            table_drain_jobs=20_000,
            mvcc_clean_s=60.0,
            mvcc_hold_s=600.0,
            mvcc_sample_s=10.0,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
