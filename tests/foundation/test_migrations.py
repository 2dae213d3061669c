"""Migrations replay: upgrade head -> downgrade base -> upgrade head gives the same schema.

The schema is compared as a catalog snapshot (columns, indexes, constraints, policies, RLS
flags, views, functions, triggers, types, grants), so a downgrade that forgets an object or
an upgrade that is not repeatable fails here. Roles are cluster-wide and may serve other
databases, so downgrade keeps them on purpose: they must still exist afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import create_database, drop_database, migrate

SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"

SNAPSHOT: dict[str, str] = {
    "schemas": f"""
        SELECT nspname FROM pg_namespace
        WHERE nspname NOT IN {SYSTEM} AND nspname NOT LIKE 'pg_temp%'
          AND nspname NOT LIKE 'pg_toast_temp%'""",
    "columns": f"""
        SELECT table_schema, table_name, column_name, data_type, udt_name, is_nullable,
               column_default, ordinal_position
        FROM information_schema.columns WHERE table_schema NOT IN {SYSTEM}""",
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
               c.reloptions::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN {SYSTEM}""",
    "indexes": f"SELECT schemaname, indexname, indexdef FROM pg_indexes "
               f"WHERE schemaname NOT IN {SYSTEM}",
    "constraints": f"""
        SELECT n.nspname, c.conrelid::regclass::text, c.conname, c.contype,
               pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname NOT IN {SYSTEM}""",
    "policies": "SELECT schemaname, tablename, policyname, permissive, roles::text, cmd, "
                "qual, with_check FROM pg_policies",
    "views": f"SELECT schemaname, viewname, definition FROM pg_views "
             f"WHERE schemaname NOT IN {SYSTEM}",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               md5(p.prosrc), p.prosecdef, p.proconfig::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN {SYSTEM}""",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) "
                "FROM pg_trigger WHERE NOT tgisinternal",
    "types": f"""
        SELECT n.nspname, t.typname, t.typtype,
               array(SELECT enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid
                     ORDER BY e.enumsortorder)::text
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT IN {SYSTEM} AND t.typtype IN ('e', 'd', 'c')
          AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')""",
    "table_grants": f"""
        SELECT grantee, table_schema, table_name, privilege_type
        FROM information_schema.role_table_grants WHERE table_schema NOT IN {SYSTEM}""",
    "column_grants": f"""
        SELECT grantee, table_schema, table_name, column_name, privilege_type
        FROM information_schema.column_privileges
        WHERE table_schema NOT IN {SYSTEM} AND grantee IN ('app_user', 'app_worker')""",
    "schema_grants": f"""
        SELECT n.nspname, acl::text FROM pg_namespace n, unnest(n.nspacl) AS acl
        WHERE n.nspname NOT IN {SYSTEM}""",
    "routine_grants": f"""
        SELECT grantee, routine_schema, routine_name, privilege_type
        FROM information_schema.role_routine_grants
        WHERE routine_schema NOT IN {SYSTEM} AND grantee IN ('app_user', 'app_worker')""",
}


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: sorted(conn.execute(query).fetchall(), key=repr)  # type: ignore[arg-type]
                for name, query in SNAPSHOT.items()}


@pytest.fixture
def fresh_db(server_url: str) -> Iterator[str]:
    """An empty database (no template): the migrations build everything themselves."""
    name = f"pgjobs_mig_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)


def test_upgrade_downgrade_upgrade_gives_the_same_schema(fresh_db: str) -> None:
    empty = snapshot(fresh_db)
    migrate(fresh_db)
    first = snapshot(fresh_db)
    assert ("dramatiq", "queue", "r", True, True, None) in first["relations"]

    migrate(fresh_db, "base", down=True)
    downgraded = snapshot(fresh_db)
    # Everything the migrations created is gone; Alembic's own version table stays, empty.
    leftovers = {name: [row for row in rows if row not in empty[name]
                        and "alembic_version" not in repr(row)]
                 for name, rows in downgraded.items()}
    assert {name: rows for name, rows in leftovers.items() if rows} == {}
    # Roles are cluster-wide (other databases may use them): downgrade keeps them by design.
    with psycopg.connect(fresh_db) as conn:
        roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname IN "
                             "('app_user', 'app_worker') ORDER BY 1").fetchall()
        assert roles == [("app_user",), ("app_worker",)]
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)

    migrate(fresh_db)
    second = snapshot(fresh_db)
    for name in SNAPSHOT:
        assert second[name] == first[name], f"{name} differ after downgrade + upgrade"
