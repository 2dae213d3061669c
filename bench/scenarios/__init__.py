"""The scenarios, in the order a run performs them; each adds figures to the results."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Context

Scenario = Callable[[Context], None]


def registry() -> dict[str, Scenario]:
    from bench.scenarios import (
        backlog,
        delayed,
        drain,
        enqueue,
        features,
        latency,
        orphan,
        reference,
    )

    return {
        "enqueue": enqueue.run,
        "drain": drain.run,
        "latency": latency.run,
        "backlog": backlog.run,
        "delayed": delayed.run,
        "orphan": orphan.run,
        "reference": reference.run,
        "features": features.run,
    }
