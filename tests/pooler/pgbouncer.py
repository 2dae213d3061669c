"""A real PgBouncer in front of the server under test: generated config, free port, own dir.

Used by tests/pooler and ``python -m bench.pooler``. PgBouncer refuses to run as root, so when
we are root it runs as the user that runs the embedded cluster (or postgres / nobody). Clients
reach it on 127.0.0.1; it reaches PostgreSQL the way the owner URL does (the embedded
cluster's unix socket, or a TCP host), logging in as each client's user: with no password on
the embedded cluster (trust), else with the role passwords the environment gives.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

#: Where CI and Debian put it (.ci/run installs the package when it is missing).
CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
SERVICE_USERS = ("pgserver", "postgres", "nobody")
ROLE_PASSWORDS = {"app_user": "APP_USER_PASSWORD", "app_actor": "APP_ACTOR_PASSWORD",
                  "app_worker": "APP_WORKER_PASSWORD"}

#: What a session can keep that the next client would meet: settings (and the role),
#: temporary tables, sequence caches, LISTENs, advisory locks, held cursors. DISCARD ALL
#: also drops cached plans (and prepared statements), which every next transaction would
#: then plan again: costly, and nothing of another tenant's is in a plan.
RESET = ("RESET ALL; SET SESSION AUTHORIZATION DEFAULT; DISCARD TEMP; DISCARD SEQUENCES; "
         "UNLISTEN *; SELECT pg_advisory_unlock_all(); CLOSE ALL")

#: Transaction mode; after every transaction the server connection is reset (``RESET``),
#: so nothing a client leaves in a session (temp tables, settings) reaches the next client.
BASE_SETTINGS: dict[str, str] = {
    "pool_mode": "transaction",
    "default_pool_size": "2",
    "max_client_conn": "500",
    "server_reset_query": RESET,
    "server_reset_query_always": "1",
    "ignore_startup_parameters": "extra_float_digits",
    "server_idle_timeout": "60",
}


class PgBouncerMissing(RuntimeError):
    """pgbouncer is not installed."""


def find_pgbouncer() -> str | None:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout.splitlines() or ["unknown"])[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """None unless we are root; then the embedded cluster's user, else a service user."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(Exception):
        from app.devdb import embedded_dir

        owner = (embedded_dir() / "PG_VERSION").stat().st_uid
        if owner != 0:
            return pwd.getpwuid(owner)
    for name in SERVICE_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PgBouncerMissing(f"running as root, and none of the users {SERVICE_USERS} exists "
                           "for PgBouncer to run as")


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@dataclass
class PgBouncer:
    """One running pgbouncer; ``url(user, dbname)`` is a client URL through it."""

    directory: Path
    port: int
    owner: str
    process: subprocess.Popen[bytes]
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """What JOBS_TRANSACTION_POOLER names it by."""
        return f"127.0.0.1:{self.port}"

    def url(self, user: str, dbname: str) -> str:
        password = os.environ.get(ROLE_PASSWORDS.get(user, ""), "")
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW what`` on the admin console (pools, servers, clients, stats...)."""
        with psycopg.connect(self.url(self.owner, "pgbouncer"), autocommit=True,
                             prepare_threshold=None) as conn:
            cur = conn.execute(f"SHOW {what}")
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def listening(self) -> bool:
        return f"listening on 127.0.0.1:{self.port}" in self.log()

    def stop(self, *, remove: bool = True) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


def _server_side(owner_url: str) -> tuple[str, str, str, str]:
    """(host, port, owner user, owner password) of the server, as the owner URL reaches it."""
    params = {k: str(v) for k, v in conninfo_to_dict(owner_url).items()}
    host = params.get("host") or os.environ.get("PGHOST") or "/var/run/postgresql"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or make_url(owner_url).username or "postgres"
    return host.split(",")[0], port.split(",")[0], user, params.get("password", "")


def start(owner_url: str, **overrides: Any) -> PgBouncer:
    """Start pgbouncer in a new directory in front of ``owner_url``'s server; wait until it
    listens. ``overrides`` replace [pgbouncer] settings (e.g. default_pool_size=1).

    The directory is right under the temporary directory (which every user may traverse),
    so PgBouncer can read its files when it runs as another user; ``stop()`` removes it.
    """
    binary = find_pgbouncer()
    if binary is None:
        raise PgBouncerMissing("pgbouncer is not installed (apt-get install -y pgbouncer; "
                               ".ci/run installs it), or set PGJOBS_SKIP_POOLER=1 to skip")
    host, server_port, owner, owner_password = _server_side(owner_url)
    directory = Path(tempfile.mkdtemp(prefix="pgjobs-pgbouncer-"))
    users = {owner: owner_password}
    users.update({role: os.environ.get(env, "") for role, env in ROLE_PASSWORDS.items()})
    (directory / "users.txt").write_text(
        "".join(f"{_quote(name)} {_quote(password)}\n" for name, password in users.items()))
    settings = {**BASE_SETTINGS, **{k: str(v) for k, v in overrides.items()}}
    last_error: str = ""
    for _ in range(5):  # a free port can be taken by someone else before we bind it
        port = free_port()
        lines = ["[databases]", f"* = host={host} port={server_port}", "", "[pgbouncer]",
                 "listen_addr = 127.0.0.1", f"listen_port = {port}", "unix_socket_dir =",
                 "auth_type = trust", f"auth_file = {directory / 'users.txt'}",
                 f"admin_users = {owner}", f"logfile = {directory / 'pgbouncer.log'}",
                 f"pidfile = {directory / 'pgbouncer.pid'}"]
        lines += [f"{key} = {value}" for key, value in settings.items()]
        config = directory / "pgbouncer.ini"
        config.write_text("\n".join(lines) + "\n")
        user = _run_as()
        if user is not None:
            for path in (directory, *directory.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
        process = subprocess.Popen(
            [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            cwd=directory, start_new_session=True,
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        bouncer = PgBouncer(directory, port, owner, process, settings)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if bouncer.listening():
                return bouncer
            time.sleep(0.05)
        last_error = bouncer.log()[-2000:]
        bouncer.stop(remove=False)
        (directory / "pgbouncer.log").unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"pgbouncer did not start; its log:\n{last_error}")
