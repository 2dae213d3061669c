"""Who a request claims to come from, and the secrets that must have signed it.

The tenant is found from something the sender cannot choose for another tenant (an endpoint
token, or a shop domain / team id checked against that tenant's own secret) through the
``intake.resolve_*`` SECURITY DEFINER functions, then the endpoint's live secrets are read
under that tenant's RLS and unsealed. The result is cached per process for a short while, so
a flood of forged signatures against a known endpoint costs no database work at all; any
change to an endpoint or a secret reaches every process at once by NOTIFY (see
``app.intake.listener``), and the cache also expires on its own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.intake import queries
from app.sealing import SealingError, unseal

logger = logging.getLogger(__name__)


def token_hash(token: str) -> bytes:
    """Tokens are random (256 bits): a plain SHA-256 is enough to store and look them up."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Secret:
    id: uuid.UUID
    value: str
    created_at: datetime
    retired_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.retired_at is None or self.retired_at > now


@dataclass(frozen=True)
class Credentials:
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    secrets: tuple[Secret, ...]

    def active_secrets(self) -> list[str]:
        now = datetime.now(UTC)
        return [s.value for s in self.secrets if s.active(now)]


class CredentialCache:
    """Credentials by (source, token hash) and by (source, sender key), for ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, bytes | str], tuple[float, Credentials]] = {}

    def cached_token(self, source: str, token: str) -> Credentials | None:
        """What :meth:`by_token` would return from the cache alone (no I/O), or None."""
        return self._cached(("token", source, token_hash(token)))

    def cached_key(self, source: str, key: str) -> Credentials | None:
        return self._cached(("key", source, key.strip().lower()))

    def _cached(self, key: tuple[str, str, bytes | str]) -> Credentials | None:
        with self._lock:
            hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def by_token(self, source: str, token: str) -> Credentials | None:
        digest = token_hash(token)
        return self._get(("token", source, digest), queries.RESOLVE_TOKEN,
                         {"source": source, "hash": digest})

    def by_key(self, source: str, key: str) -> Credentials | None:
        key = key.strip().lower()
        return self._get(("key", source, key), queries.RESOLVE_KEY,
                         {"source": source, "key": key})

    def invalidate(self, endpoint_id: uuid.UUID | None = None) -> None:
        """Forget one endpoint's credentials, or everything (None)."""
        with self._lock:
            if endpoint_id is None:
                self._entries.clear()
                return
            for key in [k for k, (_, c) in self._entries.items()
                        if c.endpoint_id == endpoint_id]:
                del self._entries[key]

    def _get(self, key: tuple[str, str, bytes | str], query: str,
             params: dict[str, object]) -> Credentials | None:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = self._load(query, params)
        if found is not None and self._ttl > 0:
            with self._lock:
                self._entries[key] = (now + self._ttl, found)
        return found

    def _load(self, query: str, params: dict[str, object]) -> Credentials | None:
        with self._engine.connect() as conn:
            row = raw_connection(conn).execute(query, params).fetchone()
            conn.rollback()
        if row is None:
            return None
        tenant, endpoint = row
        with tenant_session(tenant, engine=self._engine) as session:
            rows = raw_connection(session).execute(queries.SECRETS,
                                                   {"endpoint": endpoint}).fetchall()
        if not rows or not rows[0][0]:
            return None  # the tenant is inactive (or gone): as unknown as a bad token
        secrets = []
        for _, secret_id, sealed, created_at, retired_at in rows:
            if secret_id is None:
                continue
            try:
                secrets.append(Secret(secret_id, unseal(sealed), created_at, retired_at))
            except SealingError:
                logger.error("event=secret_unsealable secret=%s endpoint=%s tenant=%s",
                             secret_id, endpoint, tenant)
        return Credentials(tenant, endpoint, tuple(secrets))
