"""Every actor: the product's families, then the modules named in ``JOBS_MODULES``.

``dramatiq app.actors`` finds them all, and so does the scheduler. ``JOBS_MODULES`` is a
comma-separated list of importable modules (``JOBS_MODULES=myapp.jobs,myapp.billing``),
each declaring its queues and actors with ``app.jobs.declare_queue`` and ``@job`` exactly as
the modules below do. A module that cannot be imported stops the process with its name.
"""

from __future__ import annotations

import importlib
import os

from app.jobs.setup import configure

broker = configure()

# The queues first: a queue is declared before the actors that use it.
from app.actors import queues  # noqa: E402

# isort: split
from app.actors import (  # noqa: E402
    activity,
    alerts,
    assistant,
    commerce,
    demo,
    digests,
    messages,
    notifications,
    photos,
    reviews,
    shipping,
    tokens,
    webhooks,
)


def user_modules() -> list[str]:
    """The modules ``JOBS_MODULES`` names (``app.actors`` itself is skipped)."""
    raw = os.environ.get("JOBS_MODULES", "")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return [name for name in names if name != __name__]


def load_user_modules() -> None:
    for name in user_modules():
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"JOBS_MODULES names {name!r}, which cannot be imported: {exc}"
                              ) from exc


load_user_modules()

__all__ = [
    "activity", "alerts", "assistant", "broker", "commerce", "demo", "digests", "messages",
    "notifications", "photos", "queues", "reviews", "shipping", "tokens", "webhooks",
]
