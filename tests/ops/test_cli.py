"""Every CLI command in-process (``main([...])``), its output, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable

import psycopg
import pytest

from app.config import get_settings
from app.store.channels import parse_events
from tests.ops.rows import STATUSES, add_job, add_worker, status_of
from tests.support import ROOT, Run, TestDB, with_database

Cli = Callable[..., Run]


def test_stats_per_queue_and_per_tenant(db: TestDB, cli: Cli) -> None:
    a, b = db.create_tenant("a"), db.create_tenant("b")
    worker = add_worker(db)
    for status in STATUSES:
        add_job(db, status, tenant=a, worker=worker)
    add_job(db, "waiting", tenant=b, queue="other", age=90)

    run = cli("stats", "--json")
    assert run.code == 0
    stats = {r["queue"]: r for r in run.json}
    assert {s: stats["mail"][s] for s in STATUSES} == dict.fromkeys(STATUSES, 1)
    assert stats["other"]["waiting"] == 1 and stats["other"]["oldest_waiting_seconds"] >= 90

    per_tenant = cli("stats", "--tenant", "--json").json
    assert {(r["tenant_name"], r["queue"], r["waiting"]) for r in per_tenant} == {
        ("a", "mail", 1), ("b", "other", 1)}
    only_b = cli("stats", "--tenant", b, "--json").json
    assert [(r["tenant_id"], r["queue"]) for r in only_b] == [(str(b), "other")]

    table = cli("stats")
    assert table.code == 0 and "mail" in table.out and "workers alive: 1 of 1" in table.out


def test_failed_lists_dead_letters_with_filters(db: TestDB, cli: Cli) -> None:
    tenant = db.create_tenant()
    dead = [add_job(db, "dead", tenant=tenant, age=i) for i in range(3)]
    add_job(db, "dead", queue="other", tenant=tenant)
    add_job(db, "cancelled", tenant=tenant)  # cancelled on purpose: not a dead letter
    rows = cli("failed", "--queue", "mail", "--json").json
    assert [r["message_id"] for r in rows] == [str(d) for d in dead]  # newest first
    assert rows[0]["last_error"] == "RuntimeError: gave up" and rows[0]["attempts"] == 3
    assert rows[0]["tenant_id"] == str(tenant) and rows[0]["args"] == ["dead"]
    assert len(cli("failed", "--limit", "2", "--json").json) == 2
    assert len(cli("failed", "--json").json) == 4
    table = cli("failed")
    assert table.code == 0 and str(dead[0]) in table.out and "gave up" in table.out


def test_show_prints_every_column_of_a_job(db: TestDB, cli: Cli) -> None:
    tenant = db.create_tenant()
    job = add_job(db, "completed", tenant=tenant, args=[{"order": 7}])
    db.query("UPDATE dramatiq.queue SET progress = 100, progress_message = 'all done', "
             "last_error = 'RuntimeError: first try' WHERE message_id = %s RETURNING 1", (job,))
    shown = cli("show", job, "--json").json
    assert shown["status"] == "completed" and shown["tenant_id"] == str(tenant)
    assert shown["args"] == [{"order": 7}] and shown["result"] == {"ok": 1}
    assert (shown["progress"], shown["progress_message"]) == (100, "all done")
    assert shown["last_error"] == "RuntimeError: first try"
    table = cli("show", job)
    assert table.code == 0 and "all done" in table.out and '{"order":7}' in table.out


def test_listings_of_active_scheduled_recent_and_workers(db: TestDB, cli: Cli) -> None:
    worker = add_worker(db)
    active = add_job(db, "active", worker=worker)
    delayed = add_job(db, "delayed")
    done = add_job(db, "completed", worker=worker)
    rows = cli("active", "--json").json
    assert [(r["message_id"], r["worker_alive"], r["pid"]) for r in rows] == [
        (str(active), True, 4242)]
    assert [r["message_id"] for r in cli("scheduled", "--json").json] == [str(delayed)]
    assert [r["message_id"] for r in cli("recent", "--json").json] == [str(done)]
    assert [r["worker_id"] for r in cli("workers", "--json").json] == [str(worker)]
    for command in ("active", "scheduled", "recent", "workers"):
        assert cli(command).code == 0


def test_cancel_waiting_and_delayed_jobs_but_not_running_ones(db: TestDB, cli: Cli) -> None:
    waiting, delayed = add_job(db, "waiting"), add_job(db, "delayed")
    running = add_job(db, "active", worker=add_worker(db))
    with psycopg.connect(db.app_url, autocommit=True) as listener:
        listener.execute('LISTEN "pgjobs.events"')
        run = cli("cancel", waiting, delayed, "--json")
        events = [e for n in listener.notifies(timeout=5, stop_after=1)
                  for e in parse_events(n.payload)]
    assert run.code == 0 and len(run.json["changed"]) == 2
    # One notification for the statement, ids only.
    assert sorted((e.event, e.message_id, e.queue) for e in events) == sorted(
        ("cancelled", str(j), "mail") for j in (waiting, delayed))
    assert status_of(db, waiting) == status_of(db, delayed) == "cancelled"
    assert db.scalar("SELECT last_error FROM dramatiq.queue WHERE message_id = %s",
                     (delayed,)) == "cancelled by operator"
    # Cancelled is not dead: retrying every dead letter leaves it alone.
    assert cli("failed", "--json").json == []
    assert cli("retry", "--all", "--json").json["changed"] == []

    refused = cli("cancel", running)
    assert refused.code == 4 and "active" in refused.err
    assert status_of(db, running) == "active"
    # All or nothing: one job the command cannot apply to leaves the others untouched.
    other = add_job(db, "waiting")
    assert cli("cancel", other, running).code == 4
    assert status_of(db, other) == "waiting"


def test_retry_named_dead_letters_resets_attempts(db: TestDB, cli: Cli) -> None:
    dead, done = add_job(db, "dead", queue="mail"), add_job(db, "completed")
    run = cli("retry", dead, "--json")
    assert run.code == 0 and [r["message_id"] for r in run.json["changed"]] == [str(dead)]
    row = db.query('SELECT "state"::text, queue_name, attempts, started_at, eta <= now() '
                   "FROM dramatiq.queue WHERE message_id = %s", (dead,))
    assert row == [("queued", "mail", 0, None, True)]
    refused = cli("retry", done)
    assert refused.code == 4 and "only dead letters" in refused.err


def test_retry_all_by_queue(db: TestDB, cli: Cli) -> None:
    mail = [add_job(db, "dead") for _ in range(3)]
    other = add_job(db, "dead", queue="other")
    run = cli("retry", "--all", "--queue", "mail", "--json")
    assert sorted(r["message_id"] for r in run.json["changed"]) == sorted(map(str, mail))
    assert {status_of(db, m) for m in mail} == {"waiting"}
    assert status_of(db, other) == "dead"
    assert cli("retry", "--all").code == 0 and status_of(db, other) == "waiting"


def test_retry_respects_a_unique_key_taken_by_a_newer_job(db: TestDB, cli: Cli) -> None:
    old = add_job(db, "dead", unique_key="order-7")
    # The enqueue path gave the dead job's key to a newer job, which is still waiting.
    db.query("UPDATE dramatiq.queue SET unique_key = NULL WHERE message_id = %s RETURNING 1",
             (old,))
    newer = add_job(db, "waiting", unique_key="order-7")
    refused = cli("retry", old)
    assert refused.code == 4 and f"held by job {newer}" in refused.err
    assert status_of(db, old) == "dead"
    bulk = cli("retry", "--all", "--json").json
    assert bulk["changed"] == [] and bulk["skipped"][0]["message_id"] == str(old)

    # Once the newer job is finished and past its window, the old one takes the key back.
    assert cli("cancel", newer).code == 0
    assert cli("retry", old).code == 0
    assert db.scalar("SELECT message_id FROM dramatiq.queue WHERE unique_key = 'order-7'") == old


def test_requeue_runs_delayed_jobs_now_and_finished_jobs_again(db: TestDB, cli: Cli) -> None:
    delayed, done, waiting = add_job(db, "retrying"), add_job(db, "completed"), add_job(
        db, "waiting")
    run = cli("requeue", delayed, done, waiting, "--json")
    assert run.code == 0
    assert run.json["skipped"] == [{"message_id": str(waiting), "status": "waiting",
                                    "reason": "already waiting"}]
    rows = dict(db.query("SELECT message_id, attempts FROM dramatiq.queue "
                         "WHERE queue_name = 'mail' AND state = 'queued' AND eta <= now()"))
    assert rows == {delayed: 1, done: 0, waiting: 0}  # a retry keeps its attempt count
    running = add_job(db, "active", worker=add_worker(db))
    assert cli("requeue", running).code == 4


def test_pause_and_resume_a_queue(db: TestDB, cli: Cli) -> None:
    add_job(db, "waiting", queue="mail")
    run = cli("pause", "mail", "--json")
    assert run.json == {"queue": "mail", "paused": True, "changed": True}
    assert db.scalar("SELECT count(*) FROM dramatiq.paused_queues WHERE queue_name = 'mail'")
    assert cli("pause", "mail", "--json").json["changed"] is False
    assert cli("stats", "--json").json[0]["paused"] is True
    assert "a typo?" in cli("pause", "mial").err

    with psycopg.connect(db.worker_url, autocommit=True) as listener:
        listener.execute('LISTEN "dramatiq.mail.enqueue"')
        run = cli("resume", "mail", "--json")
        # Idle workers are woken at once instead of at their next poll.
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [
            "dramatiq.mail.enqueue"]
    assert run.json == {"queue": "mail", "paused": False, "changed": True}
    assert db.query("SELECT queue_name FROM dramatiq.paused_queues") == [("mial",)]
    assert cli("resume", "mail").out.strip() == "mail was not paused"


def test_clear_deletes_only_waiting_and_delayed_jobs_of_the_queue(db: TestDB, cli: Cli) -> None:
    tenant = db.create_tenant()
    worker = add_worker(db)
    kept = {s: add_job(db, s, worker=worker) for s in ("active", "completed", "dead")}
    for status in ("waiting", "delayed", "retrying"):
        add_job(db, status)
    mine = add_job(db, "waiting", tenant=tenant)
    elsewhere = add_job(db, "waiting", queue="other")
    dry = cli("clear", "mail", "--dry-run", "--json").json
    assert dry == {"queue": "mail", "deleted": 0, "matching": 4, "dry_run": True}
    assert cli("clear", "mail", "--tenant", tenant, "--json").json["deleted"] == 1
    assert status_of(db, mine) is None
    assert cli("clear", "mail", "--json").json["deleted"] == 3
    remaining = {r[0] for r in db.query("SELECT message_id FROM dramatiq.queue")}
    assert remaining == {*kept.values(), elsewhere}


def test_purge_deletes_old_finished_jobs(db: TestDB, cli: Cli) -> None:
    old = [add_job(db, s, age=3 * 86400) for s in ("completed", "dead", "cancelled")]
    recent = add_job(db, "completed", age=60)
    waiting = add_job(db, "waiting", age=3 * 86400)
    held = add_job(db, "completed", age=3 * 86400, unique_key="k")
    db.query("UPDATE dramatiq.queue SET unique_until = now() + interval '1 hour' "
             "WHERE message_id = %s RETURNING 1", (held,))  # still inside its unique window
    assert cli("purge", "--older-than", "2d", "--dry-run", "--json").json["matching"] == 3
    assert cli("purge", "--older-than", "7d", "--json").json["deleted"] == 0
    assert cli("purge", "--older-than", "2d", "--json").json["deleted"] == 3
    assert all(status_of(db, j) is None for j in old)
    assert {status_of(db, j) for j in (recent, waiting, held)} == {"completed", "waiting"}


def test_bad_arguments_exit_2_unknown_ids_exit_3(db: TestDB, cli: Cli) -> None:
    for argv in (["nonsense"], ["show", "not-a-uuid"], ["retry"], ["retry", "--queue", "x"],
                 ["failed", "--limit", "0"], ["purge", "--older-than", "soon"],
                 ["pause", "mail.DQ"], ["pause", "bad name"], ["stats", "--tenant", "acme"],
                 ["cancel"]):
        run = cli(*argv)
        assert run.code == 2, (argv, run)
        assert run.err, argv
    missing = uuid.uuid4()
    for command in ("show", "cancel", "retry", "requeue"):
        run = cli(command, missing)
        assert run.code == 3 and f"no job with id {missing}" in run.err
    assert cli("--help").code == 0


def test_database_unreachable_exits_1(
    db: TestDB, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", with_database(db.owner_url, "no_such_database"))
    get_settings.cache_clear()
    run = cli("stats")
    assert run.code == 1 and "database unreachable" in run.err


def test_python_dash_m_app_ops_in_a_real_process(db: TestDB) -> None:
    dead = add_job(db, "dead")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.ops", *argv], cwd=ROOT,
                              env=db.env(), capture_output=True, text=True, timeout=60)

    stats = run("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert '"dead": 1' in stats.stdout
    assert run("retry", str(dead)).returncode == 0
    assert status_of(db, dead) == "waiting"
    unknown = run("show", str(uuid.uuid4()))
    assert unknown.returncode == 3 and "no job with id" in unknown.stderr
