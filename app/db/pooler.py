"""Transaction poolers (PgBouncer ``pool_mode = transaction``) between us and PostgreSQL.

Behind a transaction pooler, each transaction may run on a different server connection, and
the next client's transaction may run on the one we just used. So a connection to one may
carry nothing beyond a transaction: no server-side prepared statements (psycopg prepares a
statement after 5 executions and later transactions find it missing, or find another
client's), no session settings, no LISTEN, no session advisory locks. Features that need a
session use a direct URL of their own (``app.config``: ``*_DIRECT_URL``).

Whether a URL goes through one is said, not guessed: ``JOBS_TRANSACTION_POOLER`` lists the
poolers' addresses (``host:port``), and a URL whose host and port are one of them is pooled,
whichever variable it came from. A client cannot tell a pooler in transaction mode from one
in session mode, or either from PostgreSQL (PgBouncer forwards every query), so there is no
reliable detection to lean on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from psycopg.conninfo import conninfo_to_dict

#: libpq's port when a URL names none (and PGPORT is unset).
DEFAULT_PORT = "5432"

Address = tuple[str, str]


class DirectUrlRequired(ValueError):
    """A feature that needs a database session was given a transaction-pooled URL."""


def parse_addresses(raw: str, variable: str = "JOBS_TRANSACTION_POOLER") -> frozenset[Address]:
    """``host:port[,host:port...]`` as (host, port) pairs; a unix socket directory is a host.

    An address without a port means libpq's default port; IPv6 hosts go in brackets.
    """
    found: set[Address] = set()
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            port = rest.removeprefix(":") if sep else ""
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"{variable}: bad address {item!r} (use [ipv6]:port)")
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, ""
        port = port or DEFAULT_PORT
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{variable}: bad address {item!r} (expected host:port, e.g. "
                             "pgbouncer:6432)")
        found.add((host, port))
    return frozenset(found)


def endpoints(url: str) -> list[Address]:
    """The (host, port) pairs libpq would try for ``url`` (PGHOST / PGPORT as defaults)."""
    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    hosts = (params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST")
             or "").split(",")
    ports = (params.get("port") or os.environ.get("PGPORT") or DEFAULT_PORT).split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    return [(host.strip(), (port.strip() or DEFAULT_PORT)) for host, port in zip(hosts, ports,
                                                                                strict=False)]


def is_pooled(url: str, poolers: Iterable[Address]) -> bool:
    """Whether any host of ``url`` is one of ``poolers``."""
    wanted = set(poolers)
    return bool(wanted) and any(endpoint in wanted for endpoint in endpoints(url))


def describe(url: str) -> str:
    """Where ``url`` points, for error messages (never its password)."""
    return ", ".join(f"{host or 'the default socket'}:{port}" for host, port in endpoints(url))
