"""Worker identity: which machine and PID namespace a worker runs in, and when it started

A worker that dies on a host where another worker lives (the survivor, or the restarted
worker) is found dead at once by that neighbour (its PID is gone, or belongs to a younger
process), instead of after the whole lease. ``host_key`` is the kernel boot id and PID
namespace: only processes sharing it see each other's PIDs. ``process_started`` is the
process start time in clock ticks since boot, which tells a reused PID apart.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE dramatiq.workers ADD COLUMN host_key text,"
        " ADD COLUMN process_started bigint"
    )
    op.execute(
        "CREATE INDEX workers_host_key_idx ON dramatiq.workers (host_key)"
        " WHERE host_key IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE dramatiq.workers DROP COLUMN host_key, DROP COLUMN process_started")
