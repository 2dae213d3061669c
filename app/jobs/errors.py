"""Errors the job layer raises on purpose, each naming what was wrong."""

from dramatiq.middleware import MiddlewareError


class EnqueueRefused(MiddlewareError, ValueError):
    """The job cannot be enqueued as asked (e.g. a tenant actor without a tenant).

    A MiddlewareError, so dramatiq propagates it from ``before_enqueue`` instead of logging
    and carrying on.
    """


class TenantUnavailable(Exception):
    """The job's tenant does not exist or is inactive: the job is dead-lettered, not retried."""


class PoisonValue(ValueError):
    """A value PostgreSQL would refuse to store (NaN, a NUL character, a non-JSON object):
    the job is dead-lettered at once with this error, since retrying cannot help."""
