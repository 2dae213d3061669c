"""How ``make run`` starts the dashboard: its URL and, on a developer machine without
``DASHBOARD_OPERATORS``, a one-off operator password shown on the status screen."""

from __future__ import annotations

import os
import secrets

from app.dashboard.passwords import hash_password
from app.dashboard.settings import DashboardSettings

DEV_OPERATOR = "admin"


def dashboard_login() -> tuple[dict[str, str], str]:
    """Environment for the dashboard child, and the line the status screen shows."""
    host = os.environ.get("DASHBOARD_HOST", "127.0.0.1")
    port = os.environ.get("DASHBOARD_PORT", "8001")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    if os.environ.get("DASHBOARD_OPERATORS"):
        return {}, f"dashboard: {url} (operators from DASHBOARD_OPERATORS)"
    if host not in ("127.0.0.1", "localhost", "::1"):
        return {}, f"dashboard: {url} (set DASHBOARD_OPERATORS to sign in)"
    password = secrets.token_urlsafe(12)
    env = {"DASHBOARD_OPERATORS": f"{DEV_OPERATOR}:{hash_password(password)}"}
    DashboardSettings.from_env()  # bad settings stop `make run` here, with their message
    return env, f"dashboard: {url}  sign in as {DEV_OPERATOR} / {password} (this run only)"
