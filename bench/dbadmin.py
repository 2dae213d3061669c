"""Server-level helpers: which server, fresh databases, and what the server is set to.

Each system gets a database of its own per scenario so one system's leftovers (dead tuples,
held advisory locks, LISTEN backlogs) cannot slow the next one down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Server settings that decide queue performance; recorded with every run.
SETTINGS = (
    "server_version",
    "max_connections",
    "max_locks_per_transaction",
    "max_prepared_transactions",
    "shared_buffers",
    "work_mem",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "checkpoint_timeout",
    "autovacuum",
    "jit",
)


def admin_url() -> str:
    """The owner/superuser URL: ``DATABASE_URL``, else the project's dev database.

    The dev database module may be missing on an old checkout; fall back to the local
    system server then, so the bench still runs.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return libpq(url)
    try:
        from app.devdb import ensure_running
    except ImportError:
        return FALLBACK_URL
    return libpq(ensure_running())


def libpq(url: str) -> str:
    """Strip a SQLAlchemy ``+driver`` suffix so libpq, psycopg and pgbench accept the URL."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` (URI form; query such as ``?host=`` kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def with_user(url: str, user: str) -> str:
    """``url`` logging in as ``user`` with no password (trust/peer auth on a dev server)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit)


@dataclass
class Databases:
    """Creates and drops the bench databases; remembers them so cleanup can drop them all."""

    admin: str
    created: list[str] = field(default_factory=list)

    def create(self, name: str, template: str | None = None) -> str:
        """A fresh database ``name``, empty or a copy of ``template``.

        Dropped first if a crashed run left it behind.
        """
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with connect(self.admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            conn.execute(create)
        self.created.append(name)
        return with_dbname(self.admin, name)

    def drop(self, name: str) -> None:
        """Drop ``name``; ``FORCE`` ends sessions a killed worker may have left behind."""
        with connect(self.admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self.created)):
            try:
                self.drop(name)
            except psycopg.Error as exc:  # keep cleaning up the rest
                print(f"bench: could not drop database {name}: {exc}")

    @contextmanager
    def fresh(self, name: str, template: str | None = None) -> Iterator[str]:
        """A fresh database for the ``with`` body, dropped afterwards."""
        url = self.create(name, template)
        try:
            yield url
        finally:
            self.drop(name)


def server_settings(url: str) -> dict[str, str]:
    """The settings in ``SETTINGS`` plus the full version string."""
    with connect(url) as conn:
        row = conn.execute("SELECT version()").fetchone()
        out = {"version": str(row[0]) if row else "?"}
        for name in SETTINGS:
            row = conn.execute(
                "SELECT current_setting(name) FROM pg_settings WHERE name = %s", (name,)
            ).fetchone()
            if row:
                out[name] = row[0]
    return out


def lock_capacity(settings: dict[str, str]) -> int:
    """How many advisory locks the server's shared lock table holds, roughly.

    PostgreSQL sizes it as ``max_locks_per_transaction * (max_connections +
    max_prepared_transactions)``; a little spare shared memory lets it overflow somewhat, so
    this is a safe lower bound.
    """
    per_tx = int(re.sub(r"\D", "", settings.get("max_locks_per_transaction", "64")) or 64)
    conns = int(re.sub(r"\D", "", settings.get("max_connections", "100")) or 100)
    prepared = int(re.sub(r"\D", "", settings.get("max_prepared_transactions", "0")) or 0)
    return per_tx * (conns + prepared)
