"""Make a job table big: copy a template row many times in one ``INSERT ... SELECT``.

The table_size scenario wants each system's own tables as they look after a million jobs
finished and with a hundred thousand delayed: rows the system wrote itself, repeated. So a
real job of each kind is run (or delayed) through the system's API first, and that row is
copied with ``generate_series``: every column as it is, except generated keys (left to their
defaults) and the columns named in ``overrides`` (unique ids). Reading the columns from the
catalog keeps this working when a system adds columns.
"""

from __future__ import annotations

import psycopg
from psycopg import sql


def columns(conn: psycopg.Connection, table: str) -> list[tuple[str, bool]]:
    """``(name, generated)`` of each column; generated: identity, serial or generated."""
    rows = conn.execute(
        "SELECT a.attname, (a.attidentity <> '' OR a.attgenerated <> ''"
        "   OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%', false))"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d"
        "   ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (table,),
    ).fetchall()
    return [(str(name), bool(generated)) for name, generated in rows]


def replicate(
    conn: psycopg.Connection, table: str, where: str, count: int, overrides: dict[str, str]
) -> int:
    """Insert ``count`` copies of the first row of ``table`` matching ``where``.

    ``where`` and the ``overrides`` expressions are trusted SQL from the system adapters
    (``g`` is the series number). Raises if no template row exists, naming the table.
    """
    if count <= 0:
        return 0
    schema, _, name = table.rpartition(".")
    ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    cols = [(c, gen) for c, gen in columns(conn, table) if not gen or c in overrides]
    target = sql.SQL(", ").join(sql.Identifier(c) for c, _ in cols)
    source = sql.SQL(", ").join(
        sql.SQL(overrides[c]) if c in overrides else sql.SQL("t.{}").format(sql.Identifier(c))
        for c, _ in cols
    )
    template = sql.SQL("SELECT * FROM {} WHERE {} LIMIT 1").format(ident, sql.SQL(where))
    if conn.execute(template).fetchone() is None:
        raise RuntimeError(f"no template row in {table} WHERE {where}: did the layout change?")
    query = sql.SQL(
        "INSERT INTO {table} ({target}) SELECT {source}"
        " FROM ({template}) t, generate_series(1, %s) g"
    ).format(table=ident, target=target, source=source, template=template)
    cur = conn.execute(query, (count,))
    return cur.rowcount
