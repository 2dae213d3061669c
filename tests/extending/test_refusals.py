"""An unknown actor refused at definition time, by the real processes: neither the scheduler
nor a worker starts on a module whose ``recurring()`` is refused, and ``pgjobs recurring
add`` refuses a name no module registers. Nothing is written either way."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.extending.conftest import pgjobs, run
from tests.support import TestDB

BAD = "examples.shopnotes.jobs,tests.extending.bad_declaration"


def test_scheduler_does_not_start_on_a_refused_declaration(db: TestDB, logs: Path) -> None:
    started = run(db, sys.executable, "-m", "app.scheduler", JOBS_MODULES=BAD, timeout=60)
    assert started.code == 2, started.err
    assert ("event=scheduler_not_started error=recurring task 'bad.ghost': actor "
            "'shopnotes.sumarize' is not registered") in started.err
    assert "did you mean 'shopnotes.summarize'?" in started.err
    assert db.scalar("SELECT count(*) FROM scheduler.instances") == 0  # never took part
    assert db.scalar("SELECT count(*) FROM scheduler.recurring WHERE task LIKE "
                     "'%ghost%' OR task LIKE 'shopnotes.%'") == 0


def test_worker_does_not_start_on_a_refused_declaration(db: TestDB) -> None:
    started = run(db, sys.executable, "-m", "dramatiq", "app.actors", "--processes", "1",
                  "--threads", "1", JOBS_MODULES=BAD, timeout=60)
    assert started.code != 0
    assert ("RecurringDeclarationError: recurring task 'bad.ghost': actor "
            "'shopnotes.sumarize' is not registered") in started.err
    assert db.scalar("SELECT count(*) FROM dramatiq.workers") == 0


def test_recurring_add_checks_like_the_code(db: TestDB) -> None:
    unknown = pgjobs(db, "recurring", "add", "ops.ghost", "shopnotes.sumarize", "0 9 * * *")
    assert unknown.code == 2
    assert "actor 'shopnotes.sumarize' is not registered" in unknown.err
    assert "did you mean 'shopnotes.summarize'?" in unknown.err
    bad_cron = pgjobs(db, "recurring", "add", "ops.ghost", "shopnotes.summarize", "0 25 * * *")
    assert bad_cron.code == 2 and "recurring task 'ops.ghost': cron '0 25 * * *'" in bad_cron.err
    assert db.scalar("SELECT count(*) FROM scheduler.recurring WHERE task = 'ops.ghost'") == 0

    added = pgjobs(db, "recurring", "add", "ops.evening", "shopnotes.summarize", "0 19 * * *",
                   "--misfire", "skip", "--disabled")
    assert added.code == 0, added.err
    again = pgjobs(db, "recurring", "add", "ops.evening", "shopnotes.summarize", "0 19 * * *")
    assert again.code == 2 and "already exists" in again.err
    assert pgjobs(db, "recurring", "enable", "ops.evening").code == 0
    listed = {r["task"]: r for r in pgjobs(db, "recurring", "list", "--json").json}
    assert listed["ops.evening"]["enabled"] is True
    assert listed["ops.evening"]["status"] == "no live scheduler"
    assert pgjobs(db, "recurring", "remove", "ops.evening").code == 0
    assert pgjobs(db, "recurring", "disable", "ops.evening").code == 3  # unknown task
