"""``pgjobs._insert`` runs its statements with generic plans: half the server time of an enqueue.

PL/pgSQL prepares each statement of a function once per session, but with parameters
PostgreSQL plans it again for every call ("custom plans") for as long as the generic plan's
estimate looks costlier, which for ``_insert``'s statements (unnest of the arrays, the
unique-key update, the insert with its notifications) it always does. Measured with
``track_functions = all`` over 2,000 one-job enqueues: ``_insert`` took 462 us a call, 198 us
with generic plans; an enqueue's round trip went from 0.78 to 0.58 ms. A batch of 500 costs
the same either way (its planning was already shared by 500 jobs). The plans are the same
shape: every row count of an ``unnest`` of a parameter is an estimate in both.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from alembic import op

from app.db.migration_text import migration_module

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_HEADER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs\n"
_GENERIC = _HEADER + "SET plan_cache_mode = force_generic_plan\n"


def _insert_0015() -> str:
    return str(migration_module("2026_12_01_0015_claim_floors.py").insert_function())


def insert_function() -> str:
    """``pgjobs._insert`` as this migration defines it (later ones start from it)."""
    previous = _insert_0015()
    assert previous.count(_HEADER) == 1, "pgjobs._insert's header is not what 0012 wrote"
    return previous.replace(_HEADER, _GENERIC)


def upgrade() -> None:
    op.execute(insert_function())


def downgrade() -> None:
    op.execute(_insert_0015())
