"""Fixtures of the dashboard tests: a real dashboard process, tenants with admins, Chromium.

The dashboard runs as ``python -m app.dashboard`` on a free port of 127.0.0.1 against the
test's own database, exactly as ``make run`` starts it. The browser is Debian's headless
Chromium driven by Selenium; when it is missing the browser tests fail (CI must run them)
unless ``PGJOBS_SKIP_BROWSER=1`` is set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dashboard.admins import create_admin
from app.dashboard.passwords import hash_password
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.dashboard import actors
from tests.support import ROOT, TestDB, wait_for

ARTIFACTS = ROOT / "tests" / "artifacts"
OPERATOR, OPERATOR_PASSWORD = "ops", "operator-pass-1"
#: Tests hash with few iterations: a sign-in then costs microseconds, not half a second.
FAST = 1_000
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tenant:
    id: uuid.UUID
    name: str
    admin: str
    password: str


@dataclass
class Dash:
    """A running dashboard process."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        self.clients.append(client)
        return client

    def signed_in(self, username: str, password: str) -> httpx.Client:
        client = self.client()
        r = client.post("/login", data={"username": username, "password": password})
        assert r.status_code == 303, f"sign-in of {username} failed: {r.status_code}"
        return client

    def health(self) -> dict[str, Any]:
        with httpx.Client(timeout=5) as client:
            return client.get(f"{self.url}/healthz").json()

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_dashboard(db: TestDB, tmp_path: Path, **env: str) -> Dash:
    port = free_port()
    log = tmp_path / f"dashboard-{port}.log"
    operators = f"{OPERATOR}:{hash_password(OPERATOR_PASSWORD, iterations=FAST)}"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.dashboard"], cwd=ROOT, stdout=out,
        stderr=subprocess.STDOUT, start_new_session=True,
        env=db.env(DASHBOARD_PORT=str(port), DASHBOARD_OPERATORS=operators,
                   DASHBOARD_SECRET_KEY=secrets.token_urlsafe(32),
                   DASHBOARD_LIVE_INTERVAL="0.2", DASHBOARD_BATCH="500", **env),
    )
    out.close()
    db.procs.append(proc)
    dash = Dash(f"http://127.0.0.1:{port}", proc, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited: {log.read_text()[-2000:]}")
        try:
            return bool(dash.health()["listening"])
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, message="the dashboard to listen")
    return dash


@pytest.fixture
def make_dashboard(db: TestDB, tmp_path: Path) -> Iterator[Callable[..., Dash]]:
    """Start dashboards with extra settings; all are stopped after the test."""
    started: list[Dash] = []

    def make(**env: str) -> Dash:
        started.append(start_dashboard(db, tmp_path, **env))
        return started[-1]

    yield make
    for dash in started:
        dash.stop()


@pytest.fixture
def dashboard(make_dashboard: Callable[..., Dash]) -> Dash:
    return make_dashboard()


@pytest.fixture
def tenants(db: TestDB) -> tuple[Tenant, Tenant]:
    """Two tenants, each with a dashboard admin."""
    made = []
    for name, admin in (("Acme", "alice@acme"), ("Globex", "bob@globex")):
        tenant_id = db.create_tenant(name)
        password = f"{admin}-pass"
        create_admin(tenant_id, admin, password, iterations=FAST)
        made.append(Tenant(tenant_id, name, admin, password))
    return made[0], made[1]


def enqueue_work(tenant: uuid.UUID, count: int, seconds: float = 0.0, **kwargs: Any
                 ) -> list[str]:
    with tenant_session(tenant) as session:
        return [enqueue(session, actors.work, seconds, **kwargs).message_id
                for _ in range(count)]


def enqueue_failing(tenant: uuid.UUID, marker: Path) -> str:
    with tenant_session(tenant) as session:
        return enqueue(session, actors.fail_once, str(marker)).message_id


def status_of(db: TestDB, job_id: str) -> str | None:
    return db.scalar("SELECT status FROM jobs.jobs WHERE message_id = %s", (job_id,))


# -- the browser -------------------------------------------------------------------------------

def _first(paths: tuple[str, ...], name: str) -> str | None:
    found = next((p for p in paths if Path(p).exists()), None)
    return found or shutil.which(name)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), a fresh profile per test."""
    chromium, driver = _first(CHROMIUM, "chromium"), _first(CHROMEDRIVER, "chromedriver")
    if not (chromium and driver):
        if os.environ.get("PGJOBS_SKIP_BROWSER") == "1":
            pytest.skip("PGJOBS_SKIP_BROWSER=1 and no Chromium")
        pytest.fail("Chromium and chromedriver are needed for the dashboard's browser tests: "
                    "apt-get install -y chromium chromium-driver (or PGJOBS_SKIP_BROWSER=1)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pgjobs-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sign_in(drv: Any, dash: Dash, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    drv.get(f"{dash.url}/login")
    drv.find_element(By.ID, "username").send_keys(username)
    drv.find_element(By.ID, "password").send_keys(password)
    drv.find_element(By.ID, "sign-in").click()
    wait_for(lambda: "/login" not in drv.current_url, timeout=15, message="sign-in")


def screenshot(drv: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    drv.save_screenshot(str(path))
    return path


def text_of(drv: Any, css: str) -> str:
    """The text of the first element matching ``css`` ('' while there is none)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = drv.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:  # swapped by a live update meanwhile
        return ""


def click(drv: Any, by: str, value: str, *, timeout: float = 15) -> None:
    """Click an element of a live page: found again if a live update swapped it meanwhile."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )

    def attempt() -> bool:
        try:
            drv.find_element(by, value).click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    wait_for(attempt, timeout=timeout, message=f"to click {value}")
