"""Claim floors: a queue's wake-up carries the oldest eta of the rows that became ready.

Consumers claim each priority band from a floor (the eta of the last row they claimed
there, ``app.store.claim.CLAIM_FROM``) instead of from the oldest row, so a claim does not
walk the dead index entries every claimed row leaves while an old snapshot pins them. A row
can only become ready behind a floor if the consumers hear of it: ``pgjobs._insert`` now
sends its rows' oldest eta as the payload of the queue's NOTIFY (empty for a delayed side,
as before). The rows of one transaction share their eta (``now()``), so PostgreSQL still
folds a transaction's notifications of a queue into one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from alembic import op

from app.db.migration_text import function_text, migration_module

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_WOKEN = """SELECT pg_notify('dramatiq.' || i.queue_name || '.enqueue', '') FROM inserted i
        GROUP BY i.queue_name"""

_WOKEN_WITH_ETA = """SELECT pg_notify('dramatiq.' || i.queue_name || '.enqueue',
                         CASE WHEN i.queue_name LIKE '%.DQ' THEN ''
                              ELSE extract(epoch FROM min(i.eta))::text END)
        FROM inserted i GROUP BY i.queue_name"""


def _insert_0012() -> str:
    module = migration_module("2026_12_01_0012_isolation.py")
    return function_text(str(module.FUNCTIONS), "pgjobs._insert")


def insert_function() -> str:
    """``pgjobs._insert`` as this migration defines it (later ones start from it)."""
    previous = _insert_0012()
    assert _WOKEN in previous and "RETURNING q.message_id, q.queue_name\n" in previous
    return previous.replace(_WOKEN, _WOKEN_WITH_ETA).replace(
        "RETURNING q.message_id, q.queue_name\n", "RETURNING q.message_id, q.queue_name, q.eta\n")


def upgrade() -> None:
    op.execute(insert_function())


def downgrade() -> None:
    op.execute(_insert_0012())
