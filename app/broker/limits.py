"""Claim-side limits: per-key and per-queue rate and concurrency caps, round-robin keys.

A limited queue's jobs carry a ``limit_key``, always scoped to their tenant by the database
(``<tenant>/<key>``; ``<tenant>/`` by default), so no tenant can spend another's budget. They
are claimed by ``dramatiq.claim_limited`` (migration 0005, SQL in ``app.store.claim``),
which serialises the claims of one queue on a transaction-scoped advisory lock, so counts
are exact across every worker process:

* concurrency = rows of the key in state ``consumed``, derived from the rows themselves, so
  a slot is freed by completion, failure, retry and rescue alike, with no bookkeeping;
* rate = a sliding log of claim times per key (``dramatiq.rate_windows``): never more than
  ``count`` claims in any window of ``seconds`` plus the broker's start slack, and a job
  that cannot start within that slack of its claim is handed back, so what the actor (and
  the provider it calls) sees is at most ``count`` starts in any ``seconds``;
* keys are served round-robin from a cursor (optionally weighted by
  ``dramatiq.limit_weights``), so a key with 100,000 waiting jobs delays another key's jobs
  by one claim, not by its backlog.

Over-limit jobs stay ``queued`` in the table in their order. When nothing can be claimed the
function says when the next rate slot opens and the consumer sleeps until then; a freed
concurrency slot wakes consumers through a NOTIFY sent by a trigger on the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Rate = tuple[int, float]


@dataclass(frozen=True)
class Limits:
    """The limits of one queue. ``rate`` and ``concurrency`` apply per key; ``queue_*`` to
    the whole queue across all workers; ``fair`` serves keys round-robin without limits."""

    rate: Rate | None = None
    concurrency: int | None = None
    queue_rate: Rate | None = None
    queue_concurrency: int | None = None
    fair: bool = False
    #: Seconds added to this queue's rate windows beyond the start slack (None: the
    #: broker's, 0.05): what its jobs' provider calls may lag their claims by and still
    #: keep the rate where the provider counts. Widen it for a provider that counts
    #: strictly and calls that follow other work or a busy machine's scheduling.
    rate_margin: float | None = None

    def __post_init__(self) -> None:
        for name in ("rate", "queue_rate"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                not isinstance(value, tuple) or len(value) != 2
                or not _positive_int(value[0]) or not _positive_number(value[1])
            ):
                raise ValueError(
                    f"{name} must be (jobs, seconds) with jobs a positive int and seconds a "
                    f"positive number, got {value!r}"
                )
        for name in ("concurrency", "queue_concurrency"):
            value = getattr(self, name)
            if value is not None and not _positive_int(value):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.fair, bool):
            raise ValueError(f"fair must be True or False, got {self.fair!r}")
        margin = self.rate_margin
        if margin is not None and (isinstance(margin, bool) or not isinstance(
                margin, (int, float)) or not 0 <= margin <= 60):
            raise ValueError(f"rate_margin must be seconds between 0 and 60, got {margin!r}")

    @property
    def active(self) -> bool:
        return self != Limits()

    @property
    def capped(self) -> bool:
        """Whether anything is counted against a limit (fairness alone counts nothing)."""
        return any(
            v is not None
            for v in (self.rate, self.concurrency, self.queue_rate, self.queue_concurrency)
        )

    @property
    def keyed(self) -> bool:
        """Whether claims walk the keys (per-key limits imply round-robin across keys)."""
        return self.fair or self.rate is not None or self.concurrency is not None

    def params(self) -> dict[str, Any]:
        return {
            "key_rate": self.rate[0] if self.rate else None,
            "key_rate_seconds": float(self.rate[1]) if self.rate else None,
            "key_concurrency": self.concurrency,
            "queue_rate": self.queue_rate[0] if self.queue_rate else None,
            "queue_rate_seconds": float(self.queue_rate[1]) if self.queue_rate else None,
            "queue_concurrency": self.queue_concurrency,
            "fair": self.fair,
        }


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
