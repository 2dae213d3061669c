"""The figures a run produces, and their summary statistics.

A figure is one number per repeat for one (scenario, metric, system); the table shows its
median and min-max, and the ratio of ours to each peer.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    scenario: str
    metric: str
    system: str
    unit: str
    higher_is_better: bool
    values: list[float] = field(default_factory=list)
    #: "ok"; "partial"/"stalled"/"capped" (a number exists but with a caveat); "skipped" or
    #: "error" (no number; ``note`` says why).
    status: str = "ok"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: A stable name for the issue's targets to find the figure by (``bench.targets``).
    tag: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["median"] = self.median
        out["min"] = min(self.values) if self.values else None
        out["max"] = max(self.values) if self.values else None
        return out


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
