"""Signing in: operators from the environment, tenant admins from their tenant's table.

Operators are ``name:hash`` entries of ``DASHBOARD_OPERATORS``. A tenant admin's username is
first resolved to its tenant by ``dashboard.admin_tenant()`` (the only cross-tenant step,
returning the tenant id alone); the account and its hash are then read in
``tenant_session`` of that tenant, under RLS. Unknown names cost a hash check too, and every
failure says the same thing, so a response never tells which names exist. Failures are
rate-limited per username and per client address.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

from app.dashboard.db import Database, fetch_one
from app.dashboard.passwords import DUMMY_HASH, check_hash_format, verify_password
from app.dashboard.viewer import OPERATOR, TENANT_ADMIN, Viewer
from app.db.engine import app_engine, raw_connection
from app.db.tenant import tenant_session
from app.store import dashboard as queries

logger = logging.getLogger("pgjobs.dashboard")

FAILED = "wrong username or password"


def parse_operators(text: str) -> dict[str, str]:
    """``name:hash,name2:hash2`` as a dict; ValueError naming the bad entry's position."""
    operators: dict[str, str] = {}
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        name, sep, encoded = entry.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"DASHBOARD_OPERATORS entry {position} is not name:hash")
        try:
            check_hash_format(encoded.strip())
        except ValueError as exc:
            raise ValueError(f"DASHBOARD_OPERATORS entry {position} ({name}): {exc}") from None
        operators[name.strip().lower()] = encoded.strip()
    return operators


class LoginLimiter:
    """At most ``attempts`` failures per key within ``window`` seconds (in this process)."""

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float:
        """Seconds until a new try is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = [times[0] + self.window - now for key in keys
                     if len(times := self._recent(key, now)) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # forget keys whose window has passed
                for key in [k for k, v in self._failures.items() if not v or
                            v[-1] <= now - self.window]:
                    del self._failures[key]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


@dataclass
class Authenticator:
    db: Database
    operators: dict[str, str]
    limiter: LoginLimiter

    def login(self, username: str, password: str) -> Viewer | None:
        """The viewer these credentials sign in, or None (the caller says FAILED)."""
        name = username.strip().lower()
        if not name or len(name) > 200 or not password or len(password) > 1024:
            verify_password(password or "", DUMMY_HASH)
            return None
        if name in self.operators:
            if verify_password(password, self.operators[name]):
                return Viewer(OPERATOR, name)
            return None
        return self._tenant_admin(name, password)

    def _tenant_admin(self, name: str, password: str) -> Viewer | None:
        # As app_user with no tenant yet: the function is all this role may call here.
        with app_engine().connect() as lookup:
            row = fetch_one(raw_connection(lookup), queries.ADMIN_TENANT, {"username": name})
        tenant = row["tenant_id"] if row else None
        if tenant is None:
            verify_password(password, DUMMY_HASH)
            return None
        with tenant_session(tenant) as session:
            conn = raw_connection(session)
            admin = fetch_one(conn, queries.ADMIN, {"username": name})
            if admin is None or not admin["active"] or not verify_password(
                    password, admin["password_hash"]):
                return None
            conn.execute(queries.ADMIN_LOGGED_IN, {"id": admin["id"]})
            tenant_label = fetch_one(conn, queries.TENANT_NAME)
        return Viewer(TENANT_ADMIN, name, tenant_id=tenant, admin_id=admin["id"],
                      tenant_name=tenant_label["name"] if tenant_label else None)

    def still_valid(self, viewer: Viewer) -> bool:
        """An operator still configured; a tenant admin still active (read under RLS)."""
        if viewer.operator:
            return viewer.name in self.operators
        assert viewer.tenant_id is not None
        with tenant_session(viewer.tenant_id) as session:
            row = fetch_one(raw_connection(session), queries.ADMIN_ACTIVE,
                            {"id": viewer.admin_id})
        return bool(row and row["active"])


# -- the session cookie's content --------------------------------------------------------------

def session_data(viewer: Viewer) -> dict[str, str]:
    data = {"kind": viewer.kind, "name": viewer.name, "csrf": secrets.token_urlsafe(32),
            "since": str(int(time.time()))}
    if viewer.tenant_id is not None:
        data["tenant"] = str(viewer.tenant_id)
        data["admin"] = str(viewer.admin_id)
        data["tenant_name"] = viewer.tenant_name or ""
    return data


def viewer_from(data: dict[str, str]) -> Viewer | None:
    try:
        if data.get("kind") == OPERATOR:
            return Viewer(OPERATOR, data["name"])
        if data.get("kind") == TENANT_ADMIN:
            return Viewer(TENANT_ADMIN, data["name"], tenant_id=uuid.UUID(data["tenant"]),
                          admin_id=uuid.UUID(data["admin"]),
                          tenant_name=data.get("tenant_name") or None)
    except (KeyError, ValueError):
        return None
    return None


def csrf_ok(data: dict[str, str], token: str | None) -> bool:
    """The token a form or header carries matches the one bound to this session."""
    expected = data.get("csrf")
    return bool(expected and token) and hmac.compare_digest(str(expected), str(token))
