"""``recurring()`` refuses a task it cannot schedule at once, naming the task and why; what
it declares reaches ``scheduler.recurring`` idempotently; a row naming an unknown actor is
skipped at sync while the others are scheduled."""

from __future__ import annotations

from typing import Any

import dramatiq
import psycopg
import pytest

from app.config import get_settings
from app.jobs import job
from app.scheduler import RecurringDeclarationError, recurring
from app.scheduler.declarations import RecurringTask, write_declared
from app.scheduler.definitions import load_schedules
from tests.support import TestDB


@pytest.fixture(scope="module")
def ticker() -> dramatiq.Actor:
    """A registered actor of the shape the scheduler calls: ``slot`` plus keyword args."""
    import app.actors  # noqa: F401  the product's actors, as the scheduler loads them

    @job(actor_name="extending.tick", queue_name="extending")
    def tick(slot: str, size: int = 1) -> None:
        del slot, size

    return tick


@pytest.mark.parametrize(("options", "message"), [
    ({"actor": "extending.tock"},
     "recurring task 'x': actor 'extending.tock' is not registered (declare it with @job in a "
     "module listed in JOBS_MODULES), did you mean 'extending.tick'?"),
    ({"actor": 42}, "recurring task 'x': actor must be an actor or its name, got 42"),
    ({"cron": "* * *"}, "recurring task 'x': cron '* * *' needs 5 fields (or 6 with seconds "
                        "first)"),
    ({"cron": "61 * * * *"}, "recurring task 'x': cron '61 * * * *':"),
    ({"cron": "0 7 * * 9"}, "recurring task 'x': weekday field '9': '9' is out of 0-7"),
    ({"timezone": "Mars/Olympus"}, "recurring task 'x': unknown time zone 'Mars/Olympus'"),
    ({"misfire": "later"}, "recurring task 'x': misfire must be one of skip, run_once, "
                           "catch_up, got 'later'"),
    ({"catch_up_max": 0}, "recurring task 'x': catch_up_max must be an int >= 1, got 0"),
    ({"args": {"slot": "now"}}, "recurring task 'x': args must be keyword arguments by name, "
                                "without 'slot'"),
    ({"args": {"colour": "red"}}, "recurring task 'x': actor 'extending.tick' cannot be called "
                                  "with slot= and args ['colour']"),
    ({"task": "a|b"}, "not a task name: 'a|b'"),
])
def test_refused_at_once_with_its_reason(
    ticker: dramatiq.Actor, declared: dict[str, RecurringTask], options: dict[str, Any],
    message: str,
) -> None:
    definition: dict[str, Any] = {"task": "x", "actor": ticker, "cron": "*/5 * * * *",
                                  **options}
    with pytest.raises(RecurringDeclarationError) as refused:
        recurring(**definition)
    assert str(refused.value).startswith(message)
    assert isinstance(refused.value, ValueError)
    assert "x" not in declared and "a|b" not in declared


def test_declaring_twice_is_a_no_op_but_differently_is_refused(
    ticker: dramatiq.Actor, declared: dict[str, RecurringTask]
) -> None:
    first = recurring(task="extending.every-5", actor=ticker, cron="*/5 * * * *",
                      args={"size": 2})
    assert recurring(task="extending.every-5", actor="extending.tick", cron="*/5 * * * *",
                     args={"size": 2}) == first
    with pytest.raises(RecurringDeclarationError, match="already declared differently"):
        recurring(task="extending.every-5", actor=ticker, cron="*/10 * * * *")
    assert declared["extending.every-5"] == first


def test_written_once_and_the_operator_keeps_enabled(
    db: TestDB, ticker: dramatiq.Actor, declared: dict[str, RecurringTask]
) -> None:
    declared.clear()
    recurring(task="extending.every-5", actor=ticker, cron="*/5 * * * *", args={"size": 2},
              description="every five minutes")
    with psycopg.connect(db.owner_url, autocommit=True) as conn:
        assert write_declared(conn) == {"extending.every-5": "inserted"}
        stamp = db.scalar("SELECT updated_at FROM scheduler.recurring "
                          "WHERE task = 'extending.every-5'")
        assert write_declared(conn) == {"extending.every-5": "unchanged"}
        db.query("UPDATE scheduler.recurring SET enabled = false, cron = '0 0 * * *' "
                 "WHERE task = 'extending.every-5' RETURNING 1")
        assert write_declared(conn) == {"extending.every-5": "updated"}
    row = db.query("SELECT actor_name, cron, timezone, enabled, args, description, "
                   "updated_at > %s FROM scheduler.recurring WHERE task = 'extending.every-5'",
                   (stamp,))
    # The code's cron is back; the operator's "disabled" stays.
    assert row == [("extending.tick", "*/5 * * * *", None, False, {"size": 2},
                    "every five minutes", True)]


def test_unknown_actor_row_skipped_at_sync_others_scheduled(
    db: TestDB, ticker: dramatiq.Actor
) -> None:
    db.create_tenant("a")
    db.query("INSERT INTO scheduler.recurring (task, actor_name, cron, timezone) VALUES "
             "('extending.ghost', 'extending.gone', '* * * * *', 'UTC'), "
             "('extending.ok', 'extending.tick', '* * * * *', 'UTC'), "
             "('extending.off', 'extending.gone', '* * * * *', 'UTC') RETURNING 1")
    db.query("UPDATE scheduler.recurring SET enabled = false WHERE task = 'extending.off' "
             "RETURNING 1")
    known = ticker.broker.get_declared_actors()
    with psycopg.connect(get_settings().worker_database_url) as conn:
        schedules, errors = load_schedules(conn, known)
        unchecked, _ = load_schedules(conn)
    tasks = {s.task for s in schedules}
    assert "extending.ok" in tasks and "extending.ghost" not in tasks
    assert "digests.daily" in tasks  # the built-ins are untouched
    # A disabled definition never fires, so it is not reported.
    assert errors == ["extending.ghost: actor 'extending.gone' is not registered (declare it "
                      "with @job in a module listed in JOBS_MODULES)"]
    assert "extending.ghost" in {s.task for s in unchecked}
