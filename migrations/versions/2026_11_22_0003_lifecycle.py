"""Lifecycle: where each worker serves its metrics; retention's index (issue 4)

Workers record the port their Prometheus endpoint listens on, so a scraper (or an operator)
finds every process's metrics from ``dramatiq.workers`` even when ports were picked freely.
Retention deletes finished rows in ``mtime`` order per queue and state: the foundation's
``queue_finished_idx (queue_name, state, mtime)`` already serves it, so no index is added.
Progress, results and the events channel use columns the foundation created.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dramatiq.workers ADD COLUMN metrics_port integer")


def downgrade() -> None:
    op.execute("ALTER TABLE dramatiq.workers DROP COLUMN metrics_port")
