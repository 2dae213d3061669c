"""shopnotes: order notes and daily summaries, under tenant RLS

The first revision of shopnotes' own branch: no ``down_revision`` (a branch of its own, so
pgjobs' migrations and ours never need a merge), a branch label, and ``depends_on`` the
pgjobs revision that provides what it uses (tenants, the tenant roles, ``enable_tenant_rls``).
Later shopnotes revisions chain on this one (``down_revision = "shopnotes_0001"``).

Revision ID: shopnotes_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from app.db.rls import enable_tenant_rls

revision = "shopnotes_0001"
down_revision = None
branch_labels = ("shopnotes",)
depends_on = "0011"


def _tenant_id() -> sa.Column:
    return sa.Column("tenant_id", UUID(as_uuid=True),
                     sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "shopnotes_notes",
        sa.Column("id", UUID(as_uuid=True), primary_key=True,
                  server_default=sa.text("gen_random_uuid()")),
        _tenant_id(),
        sa.Column("order_ref", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
    )
    op.create_index("shopnotes_notes_tenant_id_created_at_idx", "shopnotes_notes",
                    ["tenant_id", "created_at"])
    op.create_table(
        "shopnotes_summaries",
        _tenant_id(),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("tenant_id", "slot"),
    )
    # RLS enabled and forced, the one tenant policy, grants to the tenant roles.
    enable_tenant_rls(op, "shopnotes_notes")
    enable_tenant_rls(op, "shopnotes_summaries")


def downgrade() -> None:
    op.drop_table("shopnotes_summaries")
    op.drop_table("shopnotes_notes")
