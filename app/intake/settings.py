"""The intake's settings, from the environment (``INTAKE_*``), read once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.engine import make_url

from app.config import env_number, get_settings
from app.db.connections import session_url
from app.db.pooler import DirectUrlRequired, describe

#: The intake's session feature, named in the start-up error behind a transaction pooler.
LISTENING = "the intake's LISTEN connection (activity feed, credential changes)"


@dataclass(frozen=True)
class IntakeSettings:
    host: str
    port: int
    workers: int
    #: Bodies larger than this are refused with 413 before they are read.
    max_body_bytes: int
    #: Slack requests whose timestamp is further than this from now are refused (replays).
    slack_tolerance_seconds: float
    #: ``Retry-After`` of a 503 (database unreachable).
    retry_after_seconds: int
    #: How long a process trusts verification material it read (endpoint, sealed secrets);
    #: changes reach every process at once by NOTIFY, this bounds it if that is missed.
    credentials_cache_seconds: float
    #: Application URL (``app_user``) with the intake's connect and statement timeouts.
    database_url: str
    pool_size: int
    #: A direct (not transaction-pooled) URL for the one LISTEN connection per process:
    #: ``INTAKE_LISTEN_URL``, else the application role's session URL (``APP_DIRECT_URL``).
    listen_url: str
    #: SSE: a comment line this often keeps proxies from closing an idle stream.
    keepalive_seconds: float
    #: SSE: re-read the feed this often even without a NOTIFY (a missed one costs no event).
    feed_poll_seconds: float
    log_level: str

    @classmethod
    def from_env(cls) -> IntakeSettings:
        app_url = get_settings().app_database_url
        timeout = int(env_number("INTAKE_DB_TIMEOUT_SECONDS", 5))
        url = make_url(app_url).update_query_dict({
            "connect_timeout": str(max(1, timeout)),
            "options": f"-c statement_timeout={timeout * 1000}",
            "application_name": "pgjobs-intake",
        })
        workers = int(env_number("INTAKE_WORKERS", 2))
        if workers < 1:
            raise ValueError(f"INTAKE_WORKERS must be at least 1, got {workers}")
        return cls(
            host=os.environ.get("INTAKE_HOST", "127.0.0.1"),
            port=int(env_number("INTAKE_PORT", 8000)),
            workers=workers,
            max_body_bytes=int(env_number("INTAKE_MAX_BODY_BYTES", 1024 * 1024)),
            slack_tolerance_seconds=env_number("INTAKE_SLACK_TOLERANCE_SECONDS", 300),
            retry_after_seconds=int(env_number("INTAKE_RETRY_AFTER_SECONDS", 5)),
            credentials_cache_seconds=env_number("INTAKE_CREDENTIALS_CACHE_SECONDS", 30),
            database_url=url.render_as_string(hide_password=False),
            pool_size=int(env_number("INTAKE_DB_POOL_SIZE", 10)),
            listen_url=_listen_url(app_url),
            keepalive_seconds=env_number("INTAKE_SSE_KEEPALIVE_SECONDS", 15),
            feed_poll_seconds=env_number("INTAKE_SSE_POLL_SECONDS", 5),
            log_level=os.environ.get("INTAKE_LOG_LEVEL", "INFO").upper(),
        )


def _listen_url(app_url: str) -> str:
    """Where the LISTEN connection goes; refused at start if that is a transaction pooler."""
    explicit = os.environ.get("INTAKE_LISTEN_URL")
    if explicit:
        if get_settings().is_pooled(explicit):
            raise DirectUrlRequired(
                f"INTAKE_LISTEN_URL points at a transaction pooler ({describe(explicit)}, "
                f"JOBS_TRANSACTION_POOLER): {LISTENING} needs a session; give it a direct URL")
        return explicit
    try:
        return session_url(app_url, LISTENING)
    except DirectUrlRequired as exc:
        raise DirectUrlRequired(f"{exc} (or INTAKE_LISTEN_URL for the intake alone)") from None


@lru_cache(maxsize=1)
def get_intake_settings() -> IntakeSettings:
    return IntakeSettings.from_env()
