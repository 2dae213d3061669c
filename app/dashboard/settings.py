"""The dashboard's settings, from the environment (documented in the README's dashboard part)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app.config import env_number

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


def _key_file() -> Path:
    from app.devdb import data_dir

    return data_dir() / "dashboard.key"


def local_secret() -> str:
    """A signing key generated once into ``$JOBS_DATA_DIR/dashboard.key`` (mode 0600).

    Every dashboard process on the machine shares it, so a session survives a restart and is
    valid on any of them; production sets ``DASHBOARD_SECRET_KEY`` instead.
    """
    path = _key_file()
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key


@dataclass(frozen=True)
class DashboardSettings:
    host: str
    port: int
    #: ``name:pbkdf2-hash`` entries, comma-separated (``python -m app.dashboard hash``).
    operators: str
    secret_key: str
    #: Send the session cookie over HTTPS only (on by default unless serving localhost).
    secure_cookie: bool
    session_seconds: float
    login_attempts: int
    login_window_seconds: float
    #: Jobs per transaction in bulk actions.
    batch_size: int
    page_size: int
    #: Seconds between two pushes of the same live view (events are coalesced meanwhile).
    live_interval: float
    #: Extra payload keys to mask (``key`` or ``actor:key``), comma-separated.
    mask_fields: str

    @classmethod
    def from_env(cls) -> DashboardSettings:
        host = os.environ.get("DASHBOARD_HOST", "127.0.0.1")
        port = int(env_number("DASHBOARD_PORT", 8001))
        if not 0 < port < 65536:
            raise ValueError(f"DASHBOARD_PORT must be a TCP port, got {port}")
        batch = int(env_number("DASHBOARD_BATCH", 500))
        if batch < 1:
            raise ValueError(f"DASHBOARD_BATCH must be at least 1, got {batch}")
        return cls(
            host=host,
            port=port,
            operators=os.environ.get("DASHBOARD_OPERATORS", ""),
            secret_key=os.environ.get("DASHBOARD_SECRET_KEY") or local_secret(),
            secure_cookie=_flag("DASHBOARD_SECURE_COOKIE", host not in LOCAL_HOSTS),
            session_seconds=env_number("DASHBOARD_SESSION_HOURS", 12) * 3600,
            login_attempts=int(env_number("DASHBOARD_LOGIN_ATTEMPTS", 5)),
            login_window_seconds=env_number("DASHBOARD_LOGIN_WINDOW", 300),
            batch_size=batch,
            page_size=int(env_number("DASHBOARD_PAGE_SIZE", 50)),
            live_interval=env_number("DASHBOARD_LIVE_INTERVAL", 1.0),
            mask_fields=os.environ.get("DASHBOARD_MASK_FIELDS", ""),
        )
