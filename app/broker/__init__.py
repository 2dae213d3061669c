"""The PostgreSQL broker: dramatiq-pg's table and channels, a claim path that scales.

Nothing tenant- or domain-specific lives here; see ``app.jobs`` for policies and the API.
"""

from app.broker.broker import PostgresJobsBroker

__all__ = ["PostgresJobsBroker"]
