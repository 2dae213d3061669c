"""Finished rows indexed by (mtime, message_id): retention's count limit reads ``keep`` entries.

Retention keeps exactly the newest ``completed_max_count`` rows, ties on ``mtime`` broken by
id (a group commit stamps up to a claim batch of rows with one ``mtime``). The index had
``mtime`` only, so finding the row ``keep`` places from the newest was an incremental sort
whose presorted groups are ties: with many rows of one ``mtime`` (a bulk import, a burst
finished in one transaction, the table_size bench's 1,000,000 copies) PostgreSQL read and
sorted them all, 590 ms for each batch of 500 deletions while workers drained beside it.
With the id in the key the same question can be a backward walk of ``keep`` index entries
(9.9 ms a batch on that table). The planner took it only with the state written in the
statement and the two limits apart (``app.store.retention``): a generic plan cannot use this
partial index for a ``state = $n``.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_FINISHED = "WHERE \"state\" IN ('done', 'rejected')"


def upgrade() -> None:
    op.execute("DROP INDEX dramatiq.queue_finished_idx")
    op.execute("CREATE INDEX queue_finished_idx ON dramatiq.queue "
               f"(queue_name, \"state\", mtime, message_id) {_FINISHED}")


def downgrade() -> None:
    op.execute("DROP INDEX dramatiq.queue_finished_idx")
    op.execute(f"CREATE INDEX queue_finished_idx ON dramatiq.queue (queue_name, \"state\", mtime) "
               f"{_FINISHED}")
