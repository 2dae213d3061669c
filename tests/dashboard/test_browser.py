"""The dashboard in a real browser (headless Chromium), against real worker processes.

Each test signs in through the login form, looks at pages as a person would, and acts
through the confirmation pages; live parts are checked to change without a reload (a
marker set on the page's window survives). Screenshots of every page go to tests/artifacts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.dashboard import actors
from tests.dashboard.conftest import (
    OPERATOR,
    OPERATOR_PASSWORD,
    Dash,
    Tenant,
    click,
    enqueue_failing,
    enqueue_work,
    screenshot,
    sign_in,
    status_of,
    text_of,
)
from tests.support import ROOT, TestDB, wait_for

pytestmark = pytest.mark.slow


def mark_page(drv: Any) -> None:
    drv.execute_script("window.__notReloaded = true")


def not_reloaded(drv: Any) -> bool:
    return bool(drv.execute_script("return window.__notReloaded === true"))


def cell(drv: Any, queue: str, column: str) -> str:
    return text_of(drv, f'tr[data-queue="{queue}"] td.{column}')


def confirm(drv: Any) -> None:
    """Click the confirmation button and wait for the page it leads to."""
    from selenium.common.exceptions import WebDriverException

    button = drv.find_element(By.ID, "confirm")
    click(drv, By.ID, "confirm")

    def left() -> bool:
        try:
            button.is_enabled()
        except WebDriverException:
            # Stale: the page changed. Chromium says so as a StaleElementReferenceException
            # or, while the new document is being built, as "Node with given id does not
            # belong to the document".
            return True
        return False

    wait_for(left, timeout=15, message="the confirmed action's page")


def test_sign_in_then_watch_a_queue_fill_and_drain_live(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant], browser: Any, tmp_path: Path
) -> None:
    acme, _ = tenants
    browser.get(f"{dashboard.url}/queues")
    assert "/login" in browser.current_url  # signed out: sent to the login form
    screenshot(browser, "login")
    sign_in(browser, dashboard, OPERATOR, OPERATOR_PASSWORD)
    assert text_of(browser, "#viewer").startswith(OPERATOR)
    mark_page(browser)

    enqueue_work(acme.id, 40, 0.02)
    wait_for(lambda: cell(browser, "dash", "waiting") == "40", timeout=20,
             message="the queue page to show 40 waiting jobs, live")
    screenshot(browser, "queues-filling")

    db.start_worker("tests.dashboard.actors", threads=4, queues=["dash"],
                    log=tmp_path / "worker.log")
    wait_for(lambda: cell(browser, "dash", "waiting") == "0"
             and cell(browser, "dash", "completed") == "40", timeout=60,
             message="the queue to drain on the page, live")
    assert not_reloaded(browser), "the page updated itself, without a reload"
    screenshot(browser, "queues")
    # One listener for the process, one feed for every operator tab: not a query per tab.
    assert dashboard.health()["listening"]


def test_open_a_dead_letter_and_retry_it(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant], browser: Any, tmp_path: Path
) -> None:
    acme, _ = tenants
    db.start_worker("tests.dashboard.actors", threads=2, queues=["dash"],
                    log=tmp_path / "worker.log")
    job_id = enqueue_failing(acme.id, tmp_path / "marker")
    wait_for(lambda: status_of(db, job_id) == "dead", timeout=30, message="a dead letter")

    sign_in(browser, dashboard, OPERATOR, OPERATOR_PASSWORD)
    browser.get(f"{dashboard.url}/dead")
    wait_for(lambda: "first run fails on purpose" in text_of(browser, "#dead-table"),
             message="the dead letter's error group")
    screenshot(browser, "dead-letters")
    click(browser, By.LINK_TEXT, "Open")
    wait_for(lambda: job_id[:8] in text_of(browser, "#jobs-table"), message="the job listed")
    screenshot(browser, "jobs-dead")
    click(browser, By.CSS_SELECTOR, f'tr[data-id="{job_id}"] a.job-link')
    wait_for(lambda: "RuntimeError: first run fails on purpose" in text_of(
        browser, "#last-error"), message="its last error")
    wait_for(lambda: "dead" in text_of(browser, "#attempts"),
             message="its failed attempt, with the error")
    screenshot(browser, "job-dead")

    click(browser, By.ID, "retry")
    assert "Retry 1 job" in text_of(browser, "#confirm-what")
    screenshot(browser, "confirm-retry")
    confirm(browser)
    assert "retried 1 job" in text_of(browser, "#flash")
    mark_page(browser)
    wait_for(lambda: text_of(browser, "#job-status") == "completed", timeout=30,
             message="the retried job to complete, shown live on its page")
    assert not_reloaded(browser)
    assert status_of(db, job_id) == "completed"
    screenshot(browser, "job-completed")
    audit = db.query("SELECT actor_name, action, outcome FROM dashboard.audit "
                     "WHERE action = 'retry'")
    assert audit == [(OPERATOR, "retry", "done")]


def test_pause_and_resume_a_queue(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant], browser: Any, tmp_path: Path
) -> None:
    acme, _ = tenants
    enqueue_work(acme.id, 1)
    sign_in(browser, dashboard, OPERATOR, OPERATOR_PASSWORD)
    browser.get(f"{dashboard.url}/queues")
    click(browser, By.ID, "pause-dash")
    assert "Pause queue dash" in text_of(browser, "#confirm-what")
    confirm(browser)
    assert "paused dash" in text_of(browser, "#flash")
    wait_for(lambda: cell(browser, "dash", "qstate") == "paused", message="shown paused")
    assert db.scalar("SELECT count(*) FROM dramatiq.paused_queues WHERE queue_name = 'dash'")

    db.start_worker("tests.dashboard.actors", threads=2, queues=["dash"],
                    log=tmp_path / "worker.log")
    wait_for(lambda: db.scalar("SELECT count(*) FROM jobs.workers WHERE alive") == 1,
             timeout=30, message="the worker to register")
    wait_for(lambda: cell(browser, "dash", "waiting") == "1", message="paused: the job waits")

    click(browser, By.ID, "resume-dash")
    confirm(browser)
    assert "resumed dash" in text_of(browser, "#flash")
    wait_for(lambda: cell(browser, "dash", "completed") == "1", timeout=30,
             message="the job to run once the queue is resumed")
    wait_for(lambda: cell(browser, "dash", "qstate") == "running", message="shown running")
    actions = db.query("SELECT action, target FROM dashboard.audit ORDER BY id")
    assert actions == [("pause", "dash"), ("resume", "dash")]


def test_a_tenant_admin_sees_and_acts_on_their_tenant_only(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant], browser: Any, tmp_path: Path
) -> None:
    acme, globex = tenants
    db.start_worker("tests.dashboard.actors", threads=2, queues=["dash"],
                    log=tmp_path / "worker.log")
    mine = enqueue_failing(acme.id, tmp_path / "acme")
    theirs = enqueue_failing(globex.id, tmp_path / "globex")
    wait_for(lambda: status_of(db, mine) == status_of(db, theirs) == "dead", timeout=30,
             message="a dead letter in each tenant")

    sign_in(browser, dashboard, acme.admin, acme.password)
    assert "admin of Acme" in text_of(browser, "#viewer")
    nav = text_of(browser, "header nav")
    assert "Workers" not in nav and "Recurring" not in nav, "operator pages are not offered"
    browser.get(f"{dashboard.url}/jobs?status=dead")
    listed = wait_for(lambda: text_of(browser, "#jobs-table"), message="the job list")
    assert mine[:8] in listed and theirs[:8] not in listed
    screenshot(browser, "tenant-admin-jobs")

    # Editing the URL: the other tenant's job, and a filter naming the other tenant.
    browser.get(f"{dashboard.url}/jobs/{theirs}")
    assert "No job" in text_of(browser, "#error")
    browser.get(f"{dashboard.url}/jobs?status=dead&tenant={globex.id}")
    listed = wait_for(lambda: text_of(browser, "#jobs-table"), message="the filtered list")
    assert theirs[:8] not in listed
    browser.get(f"{dashboard.url}/workers")
    assert "for operators" in text_of(browser, "#error")

    # A confirmation page for their job, then a forged POST with this session's own token.
    browser.get(f"{dashboard.url}/confirm/jobs?action=retry&id={theirs}")
    confirm(browser)
    wait_for(lambda: "no such job" in text_of(browser, "#error"), timeout=10,
             message="the refusal to show")
    token = browser.execute_script(
        "return document.querySelector('input[name=csrf]').value")
    status = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const body = new URLSearchParams({csrf: arguments[0], action: 'requeue',
                                           id: arguments[1]});
        fetch('/actions/jobs', {method: 'POST', body, redirect: 'manual'})
            .then(r => done(r.status));""", token, theirs)
    assert status == 404
    assert status_of(db, theirs) == "dead", "the other tenant's job is untouched"

    # Their own dead letter they can retry.
    browser.get(f"{dashboard.url}/jobs/{mine}")
    click(browser, By.ID, "retry")
    confirm(browser)
    wait_for(lambda: status_of(db, mine) == "completed", timeout=30, message="own retry")
    refused = db.query("SELECT actor_name, admin_tenant_id, action, outcome FROM dashboard.audit "
                       "WHERE outcome = 'refused' ORDER BY id")
    assert refused == [(acme.admin, acme.id, "retry", "refused"),
                       (acme.admin, acme.id, "requeue", "refused")]


def test_an_action_without_the_csrf_token_is_refused(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant], browser: Any, tmp_path: Path
) -> None:
    acme, _ = tenants
    (job_id,) = enqueue_work(acme.id, 1, delay=3600)
    sign_in(browser, dashboard, OPERATOR, OPERATOR_PASSWORD)
    browser.get(f"{dashboard.url}/jobs/{job_id}")
    outcomes = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const post = body => fetch('/actions/jobs', {method: 'POST', redirect: 'manual',
                                                     body: new URLSearchParams(body)});
        Promise.all([post({action: 'cancel', id: arguments[0]}),
                     post({action: 'cancel', id: arguments[0], csrf: 'forged'})])
            .then(rs => Promise.all(rs.map(async r => [r.status, await r.text()])))
            .then(done);""", job_id)
    assert [status for status, _ in outcomes] == [403, 403]
    assert all("CSRF" in text for _, text in outcomes)
    assert status_of(db, job_id) == "delayed", "nothing changed"
    # The same action through its confirmation page (which carries the token) works.
    click(browser, By.ID, "cancel")
    confirm(browser)
    wait_for(lambda: status_of(db, job_id) == "cancelled", message="the confirmed cancel")


def test_every_page_renders_and_is_saved_as_a_screenshot(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant], browser: Any, tmp_path: Path
) -> None:
    acme, globex = tenants
    db.start_worker("tests.dashboard.actors", threads=2, log=tmp_path / "worker.log")
    scheduler = subprocess.Popen([sys.executable, "-m", "app.scheduler"], cwd=ROOT,
                                 env=db.env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    db.procs.append(scheduler)
    enqueue_work(acme.id, 5, 0.01)
    enqueue_work(globex.id, 3, delay=600)
    with tenant_session(acme.id) as session:
        for _ in range(6):
            enqueue(session, actors.limited, 0.5)
    dead = enqueue_failing(acme.id, tmp_path / "m1")
    wait_for(lambda: status_of(db, dead) == "dead", timeout=30, message="a dead letter")
    wait_for(lambda: db.scalar("SELECT count(*) FROM scheduler.instances "
                               "WHERE role = 'leader'"), timeout=30, message="a leader")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue_limits"), timeout=30,
             message="a limited queue claimed from")

    sign_in(browser, dashboard, OPERATOR, OPERATOR_PASSWORD)
    pages = {
        "queues": ("/queues", "#queues-table"),
        "jobs-delayed": ("/jobs?status=delayed", "#jobs-table"),
        "jobs-completed": ("/jobs?status=completed", "#jobs-table"),
        "job": (f"/jobs/{dead}", "#timeline"),
        "dead-letters": ("/dead", "#dead-table"),
        "workers": ("/workers", "#workers-table"),
        "recurring": ("/recurring", "#recurring-table"),
        "limits": ("/limits", "#limits-table"),
        "confirm-pause": ("/confirm/queue?action=pause&queue=dash", "#confirm-what"),
    }
    for name, (path, selector) in pages.items():
        browser.get(f"{dashboard.url}{path}")
        assert browser.find_elements(By.CSS_SELECTOR, selector), f"{name}: {selector}"
        assert "Not done" not in browser.title
        screenshot(browser, name)
    browser.get(f"{dashboard.url}/workers")
    wait_for(lambda: "alive" in text_of(browser, "#workers-table"), message="a live worker")
    browser.get(f"{dashboard.url}/recurring")
    assert "pid" in text_of(browser, "#scheduler-health"), "the leader is shown"

    browser.get(f"{dashboard.url}/jobs?status=delayed")
    click(browser, By.ID, "cancel-all")
    confirm(browser)
    wait_for(lambda: text_of(browser, "#bulk-status") == "done", timeout=30,
             message="the bulk cancel's progress page to show it done, live")
    wait_for(lambda: text_of(browser, "#bulk-changed") == "3", message="3 cancelled")
    screenshot(browser, "bulk")
    browser.get(f"{dashboard.url}/audit")
    assert "cancel_all" in text_of(browser, "#audit-table")
    screenshot(browser, "audit")

    click(browser, By.ID, "logout")
    sign_in(browser, dashboard, acme.admin, acme.password)
    browser.get(f"{dashboard.url}/queues")
    screenshot(browser, "tenant-admin-queues")
    assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-queue="dash"]')
