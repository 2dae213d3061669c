"""shopnotes' settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ShopnotesSettings:
    #: When each shop's summary is built, in the shop's own time zone (5 cron fields, or 6
    #: with seconds first: the tests use ``* * * * * *``).
    summary_cron: str
    #: How far back a summary looks, in hours.
    summary_hours: int

    @classmethod
    def from_env(cls) -> ShopnotesSettings:
        raw_hours = os.environ.get("SHOPNOTES_SUMMARY_HOURS", "24")
        try:
            hours = int(raw_hours)
        except ValueError:
            hours = 0
        if hours < 1:
            raise ValueError(f"SHOPNOTES_SUMMARY_HOURS must be a positive integer, got "
                             f"{raw_hours!r}")
        return cls(summary_cron=os.environ.get("SHOPNOTES_SUMMARY_CRON") or "0 18 * * *",
                   summary_hours=hours)
