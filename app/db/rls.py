"""Row-Level Security for tenant tables, in one place: the product's tables and a user's.

Every policy compares a row's ``tenant_id`` with ``pgjobs.current_tenant()``, the one
function that says which tenant the current transaction acts for (migration 0007). It is
called as ``(SELECT pgjobs.current_tenant())`` so PostgreSQL evaluates it once per statement
(an InitPlan), not once per row. Keeping the decision in a function means a policy's text
never changes when the way a tenant is established does.

In a migration::

    from app.db.rls import enable_tenant_rls

    def upgrade() -> None:
        op.create_table("orders", ..., sa.Column("tenant_id", UUID, nullable=False))
        enable_tenant_rls(op, "orders")

gives the table ENABLE + FORCE ROW LEVEL SECURITY, one ``tenant_isolation`` policy for
reads and writes (a row of another tenant is invisible, and writing one is an error), and
the grants the tenant roles need. Nothing else is required, and nobody writes policies by
hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

#: The tenant the current transaction acts for, evaluated once per statement.
CURRENT_TENANT = "(SELECT pgjobs.current_tenant())"

#: Roles tenant code connects as: application code and actor sessions. The broker's role
#: (``app_worker``) gets nothing on tenant tables.
TENANT_ROLES = ("app_user", "app_actor")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _checked(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} must be a plain SQL name (schema.table allowed), got {name!r}")
    return name


def tenant_table_sql(
    table: str,
    *,
    column: str = "tenant_id",
    roles: Sequence[str] = TENANT_ROLES,
    privileges: str = "SELECT, INSERT, UPDATE, DELETE",
) -> str:
    """The SQL that puts ``table`` under tenant isolation (see the module docstring)."""
    table, column = _checked(table, "table"), _checked(column, "column")
    policy = f"{column} = {CURRENT_TENANT}"
    grantees = ", ".join(_checked(role, "role") for role in roles)
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table} USING ({policy}) WITH CHECK ({policy});
GRANT {privileges} ON {table} TO {grantees};
"""


def enable_tenant_rls(op: Any, table: str, **options: Any) -> None:
    """Alembic: put ``table`` under tenant isolation (``op`` is ``alembic.op``)."""
    op.execute(tenant_table_sql(table, **options))


def disable_tenant_rls(op: Any, table: str, *, column: str = "tenant_id") -> None:
    """Alembic downgrade of :func:`enable_tenant_rls` (dropping the table does it too)."""
    table = _checked(table, "table")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table};"
               f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;"
               f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;")
