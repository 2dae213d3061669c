"""Every actor, with the broker configured first: ``dramatiq app.actors`` finds them all.

An actor binds to the global broker when its module is imported, so ``configure()`` must run
before any actor module is imported; nothing else calls ``set_broker``.
"""

from app.jobs.setup import configure

broker = configure()

from app.actors import (  # noqa: E402
    activity,
    assistant,
    commerce,
    demo,
    digests,
    photos,
    reviews,
    shipping,
    tokens,
    webhooks,
)

__all__ = [
    "activity", "assistant", "broker", "commerce", "demo", "digests", "photos", "reviews",
    "shipping", "tokens", "webhooks",
]
