"""pgjobs: multi-tenant background jobs on PostgreSQL with Dramatiq."""
