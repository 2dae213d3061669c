"""How much each scenario does: sized so one full run fits in ten minutes on 2 cores.

``--quick`` divides the counts by ten (a smoke test of the whole pipeline, not figures to
quote). Timeouts that are properties of the systems (lease and heartbeat lengths) cannot
shrink with it, so the orphan scenario keeps a deadline long enough to observe them.
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
    latency_rate: float = 50.0  # jobs/s
    latency_seconds: float = 3.0  # per repeat
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
