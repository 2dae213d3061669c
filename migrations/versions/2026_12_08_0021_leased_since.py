"""Claimed rows indexed by (worker_id, started_at): a completion batch reads what it claimed.

A worker completes the jobs it ran in batches, matching the rows it holds (``state =
'consumed'``, its ``worker_id``). This partial index was keyed by ``worker_id`` only. While
a transaction holds the xmin horizon (idle in transaction, a long REPEATABLE READ report)
every job the worker has run keeps its 'consumed' version and its entry here, so each batch
read all of them: 60,000 entries and 30 ms a batch after 2.5 minutes held at 400 jobs/s,
growing as long as it is held. A batch now also bounds ``started_at`` (the claim's time,
which no statement changes while the job runs) by its earliest claim, so it reads only the
entries claimed since.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_CONSUMED = "WHERE \"state\" = 'consumed'"


def upgrade() -> None:
    op.execute("DROP INDEX dramatiq.queue_leased_idx")
    op.execute(f"CREATE INDEX queue_leased_idx ON dramatiq.queue (worker_id, started_at) "
               f"{_CONSUMED}")


def downgrade() -> None:
    op.execute("DROP INDEX dramatiq.queue_leased_idx")
    op.execute(f"CREATE INDEX queue_leased_idx ON dramatiq.queue (worker_id) {_CONSUMED}")
