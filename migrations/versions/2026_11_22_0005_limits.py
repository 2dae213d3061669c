"""Rate limits, concurrency limits and fairness (issue 5)

Placeholder kept so the revision chain is linear; filled in by its issue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
