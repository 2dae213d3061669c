"""Operations: inspection views in the jobs schema (issue 4)

Placeholder kept so the revision chain is linear; filled in by its issue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
