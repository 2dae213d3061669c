"""The scenarios, in the order a run performs them; each adds figures to the results.

``DEFAULT`` is what ``make bench`` runs (sized to fit about ten minutes on two cores);
``EXTRA`` runs with ``--all`` or when named in ``--only``.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Context

Scenario = Callable[[Context], None]

DEFAULT = (
    "enqueue", "drain", "write_jobs", "latency_load", "backlog", "table_size", "idle_in_tx",
    "active_readers", "chaos", "io_bound", "reference",
)
EXTRA = ("delayed", "orphan", "features")


def registry() -> dict[str, Scenario]:
    from bench.scenarios import (
        backlog,
        chaos,
        delayed,
        drain,
        enqueue,
        features,
        io_bound,
        latency_load,
        mvcc,
        orphan,
        reference,
        table_size,
        write_jobs,
    )

    return {
        "enqueue": enqueue.run,
        "drain": drain.run,
        "write_jobs": write_jobs.run,
        "latency_load": latency_load.run,
        "backlog": backlog.run,
        "table_size": table_size.run,
        "idle_in_tx": mvcc.run_idle_in_tx,
        "active_readers": mvcc.run_active_readers,
        "chaos": chaos.run,
        "io_bound": io_bound.run,
        "delayed": delayed.run,
        "orphan": orphan.run,
        "reference": reference.run,
        "features": features.run,
    }
