"""Every actor, with the broker configured first: ``dramatiq app.actors`` finds them all.

An actor binds to the global broker when its module is imported, so ``configure()`` must run
before any actor module is imported; nothing else calls ``set_broker``.
"""

from app.jobs.setup import configure

broker = configure()

from app.actors import activity, demo, digests, photos, reviews, tokens, webhooks  # noqa: E402

__all__ = [
    "activity", "broker", "demo", "digests", "photos", "reviews", "tokens", "webhooks",
]
