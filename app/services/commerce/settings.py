"""Settings of the commerce family, from the environment (see the README's section)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import env_number
from app.providers.http import Timeouts


@dataclass(frozen=True)
class CommerceSettings:
    #: Timeouts of every store and carrier call.
    timeouts: Timeouts
    #: Records per page asked of a store (a sync request may ask for another size).
    page_size: int

    @classmethod
    def from_env(cls) -> CommerceSettings:
        page_size = int(env_number("COMMERCE_PAGE_SIZE", 50))
        if not 1 <= page_size <= 250:
            raise ValueError(f"COMMERCE_PAGE_SIZE must be within 1..250, got {page_size}")
        return cls(
            timeouts=Timeouts(connect=env_number("COMMERCE_CONNECT_TIMEOUT_SECONDS", 5.0),
                              read=env_number("COMMERCE_TIMEOUT_SECONDS", 30.0)),
            page_size=page_size,
        )
