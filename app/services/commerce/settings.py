"""Settings of the commerce family, from the environment (see the README's section)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.providers.http import Timeouts


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class CommerceSettings:
    #: Timeouts of every store and carrier call.
    timeouts: Timeouts
    #: Records per page asked of a store (a sync request may ask for another size).
    page_size: int

    @classmethod
    def from_env(cls) -> CommerceSettings:
        page_size = int(_number("COMMERCE_PAGE_SIZE", 50))
        if not 1 <= page_size <= 250:
            raise ValueError(f"COMMERCE_PAGE_SIZE must be within 1..250, got {page_size}")
        return cls(
            timeouts=Timeouts(connect=_number("COMMERCE_CONNECT_TIMEOUT_SECONDS", 5.0),
                              read=_number("COMMERCE_TIMEOUT_SECONDS", 30.0)),
            page_size=page_size,
        )
