"""Lifecycle: retention, progress, results, events (issue 4)

Placeholder kept so the revision chain is linear; filled in by its issue.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
