"""Errors the job layer raises on purpose, each naming what was wrong."""

from dramatiq.middleware import MiddlewareError


class EnqueueRefused(MiddlewareError, ValueError):
    """The job cannot be enqueued as asked (e.g. a tenant actor without a tenant).

    A MiddlewareError, so dramatiq propagates it from ``before_enqueue`` instead of logging
    and carrying on.
    """


class TenantUnavailable(Exception):
    """The job's tenant does not exist or is inactive: the job is dead-lettered, not retried."""
