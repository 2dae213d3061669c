"""The catalogue, for every role and every view, with no exemption.

Read straight from PostgreSQL's catalogs, so a table, view, policy or function added later
(by us or by a user's migration) is checked too: tenant roles (``app_user``, ``app_actor``)
meet Row-Level Security on every table with tenant rows and never a ``USING (true)``
policy; every view reads as its caller; tenant roles write no broker table; every
``SECURITY DEFINER`` function pins its ``search_path``.
"""

from __future__ import annotations

from tests.support import TestDB

TENANT_ROLES = ("app_user", "app_actor")
ALL_ROLES = (*TENANT_ROLES, "app_worker")
SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"


def test_every_view_reads_as_its_caller(db: TestDB) -> None:
    definer_views = db.query(f"""
        SELECT c.oid::regclass::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN {SYSTEM}
          AND (c.relkind = 'm' OR NOT coalesce(
              'security_invoker=true' = ANY(c.reloptions)
              OR 'security_invoker=on' = ANY(c.reloptions), false))
        ORDER BY 1""")
    assert definer_views == []


def test_no_policy_lets_a_tenant_role_see_or_write_everything(db: TestDB) -> None:
    wide_open = db.query(f"""
        SELECT schemaname || '.' || tablename, policyname, roles::text
        FROM pg_policies
        WHERE (roles && ARRAY['public', {', '.join(f"'{r}'" for r in TENANT_ROLES)}]::name[])
          AND (btrim(coalesce(qual, ''), '() ') = 'true'
               OR btrim(coalesce(with_check, ''), '() ') = 'true')
        ORDER BY 1, 2""")
    assert wide_open == []


def test_every_table_a_tenant_role_can_read_with_tenant_rows_forces_rls(db: TestDB) -> None:
    """Any table with a ``tenant_id`` column, including ones added later, and the job table."""
    unprotected = db.query(f"""
        SELECT c.oid::regclass::text, r.rolname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY[{', '.join(f"'{r}'" for r in ALL_ROLES)}]) AS r(rolname)
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN {SYSTEM}
          AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'tenant_id' AND NOT a.attisdropped)
               OR c.oid IN ('public.tenants'::regclass, 'dramatiq.queue'::regclass))
          AND has_table_privilege(r.rolname, c.oid, 'SELECT')
          AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                   AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
        ORDER BY 1, 2""")
    assert unprotected == []


def test_tenant_policies_ask_the_database_for_the_tenant(db: TestDB) -> None:
    """Policies applying to tenant roles compare with ``pgjobs.current_tenant()`` (which
    verifies an actor's signed context), never with the raw setting a session may forge."""
    raw = db.query(f"""
        SELECT schemaname || '.' || tablename, policyname
        FROM pg_policies
        WHERE (roles && ARRAY['public', {', '.join(f"'{r}'" for r in TENANT_ROLES)}]::name[])
          AND (coalesce(qual, '') || coalesce(with_check, '')) LIKE '%%current_setting%%'
        ORDER BY 1, 2""")
    assert raw == []


def test_tenant_roles_write_no_broker_table(db: TestDB) -> None:
    writable = db.query(f"""
        SELECT c.oid::regclass::text, r.rolname, p.privilege
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY[{', '.join(f"'{r}'" for r in TENANT_ROLES)}]) AS r(rolname)
        CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)
        WHERE n.nspname IN ('dramatiq', 'pgjobs') AND c.relkind IN ('r', 'p')
          AND (has_table_privilege(r.rolname, c.oid, p.privilege)
               OR (p.privilege = 'UPDATE' AND has_any_column_privilege(r.rolname, c.oid,
                                                                       'UPDATE')))
        ORDER BY 1, 2, 3""")
    assert writable == []


def test_every_security_definer_function_pins_its_search_path(db: TestDB) -> None:
    loose = db.query(f"""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN {SYSTEM}
          AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{{}}')) c
                          WHERE c LIKE 'search_path=%%')
        ORDER BY 1""")
    assert loose == []


def test_no_role_tenant_code_can_hold_bypasses_rls_or_owns_a_table(db: TestDB) -> None:
    rows = db.query(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = ANY(%s) ORDER BY rolname", (list(ALL_ROLES),))
    assert rows == [(role, False, False, False, False) for role in sorted(ALL_ROLES)]
    owned = db.query(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = ANY(%s)", (list(ALL_ROLES),))
    assert owned == []


def test_the_context_key_is_readable_by_the_owner_only(db: TestDB) -> None:
    assert db.query(f"""
        SELECT r.rolname FROM unnest(ARRAY[{', '.join(f"'{r}'" for r in ALL_ROLES)}]) r(rolname)
        WHERE has_table_privilege(r.rolname, 'pgjobs.keys', 'SELECT')""") == []
