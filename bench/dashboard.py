"""Dashboard page render times with a million job rows: ``python -m bench.dashboard``.

Builds a database of its own, migrates it, writes ``--rows`` job rows with one
``INSERT ... SELECT generate_series`` (spread over 8 queues, 100 tenants and the last 24 h:
mostly completed, some dead, cancelled, waiting, delayed and running, as a busy system keeps
them; one queue limited per tenant), then starts the real dashboard process and times each
page over HTTP on 127.0.0.1, as an operator and as a tenant admin: median and p95 of
``--repeats`` requests, against the 100 ms target. ``--plans`` prints the plans of the
listing and count statements.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.dbadmin import Databases, admin_url, connect

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
QUEUES = 8
TENANTS = 100

GENERATE = """
INSERT INTO dramatiq.queue (message_id, queue_name, "state", message, tenant_id, actor_name,
                            eta, priority, attempts, max_attempts, last_error, cancelled_at,
                            enqueued_at, started_at, mtime, "result")
SELECT id, q || CASE WHEN kind = 'delayed' THEN '.DQ' ELSE '' END,
       CASE kind WHEN 'done' THEN 'done' WHEN 'dead' THEN 'rejected'
                 WHEN 'cancelled' THEN 'rejected' WHEN 'running' THEN 'consumed'
                 ELSE 'queued' END::dramatiq.state,
       jsonb_build_object('queue_name', q, 'actor_name', q || '.run',
                          'args', jsonb_build_array(n), 'kwargs', '{}'::jsonb,
                          'options', jsonb_build_object('tenant_id', t), 'message_id', id,
                          'message_timestamp', 0),
       t, q || '.run',
       CASE kind WHEN 'delayed' THEN now() + (n %% 3600) * interval '1 second'
                 ELSE at END,
       0, CASE WHEN kind IN ('done', 'running') THEN 1 WHEN kind = 'dead' THEN 3 ELSE 0 END, 3,
       CASE kind WHEN 'dead' THEN 'ValueError: upstream answered ' || (400 + n %% 5)
                 WHEN 'cancelled' THEN 'cancelled by operator' END,
       CASE WHEN kind = 'cancelled' THEN at END,
       at - interval '2 seconds', CASE WHEN kind IN ('done', 'dead', 'running') THEN at END,
       at, CASE WHEN kind = 'done' THEN '{"ok": true}'::jsonb END
FROM (
    SELECT gen_random_uuid() AS id, n,
           'queue' || (n %% %(queues)s) AS q,
           (%(tenants)s::uuid[])[1 + n %% cardinality(%(tenants)s::uuid[])] AS t,
           now() - (n %% 86400) * interval '1 second' AS at,
           CASE WHEN n %% 1000 < 900 THEN 'done' WHEN n %% 1000 < 945 THEN 'dead'
                WHEN n %% 1000 < 950 THEN 'cancelled' WHEN n %% 1000 < 980 THEN 'waiting'
                WHEN n %% 1000 < 999 THEN 'delayed' ELSE 'running' END AS kind
    FROM generate_series(1, %(rows)s) AS n
) g
"""

# queue0 is limited per tenant (its waiting and running rows carry '<tenant>/' keys), so the
# limits page counts real limited rows.
LIMITED = """
INSERT INTO dramatiq.queue_limits (queue_name, key_concurrency, key_rate, key_rate_seconds)
VALUES ('queue0', 2, 10, 1);
UPDATE dramatiq.queue SET limit_key = tenant_id::text || '/'
WHERE queue_name IN ('queue0', 'queue0.DQ') AND "state" IN ('queued', 'consumed');
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str, rows: int) -> list[str]:
    """Migrate, make tenants and one tenant admin, write the rows; the tenant ids."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    with connect(url) as conn:
        tenants = [str(r[0]) for r in conn.execute(
            "INSERT INTO tenants (name) SELECT 'tenant ' || n FROM generate_series(1, %s) n "
            "RETURNING id", (TENANTS,)).fetchall()]
        started = time.perf_counter()
        conn.execute(GENERATE, {"rows": rows, "queues": QUEUES, "tenants": tenants})
        conn.execute(LIMITED)
        print(f"wrote {rows:,} job rows in {time.perf_counter() - started:.1f} s")
        conn.execute("VACUUM ANALYZE dramatiq.queue")
    return tenants


def start_dashboard(url: str, operator_hash: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DASHBOARD_PORT": str(port),
           "DASHBOARD_OPERATORS": f"bench:{operator_hash}",
           "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32)}
    env.pop("APP_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app.dashboard"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the dashboard did not start")


def time_pages(client: httpx.Client, pages: dict[str, str], repeats: int
               ) -> dict[str, tuple[float, float]]:
    out = {}
    for name, path in pages.items():
        client.get(path)  # warm: connections, prepared plans, templates
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            r = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"{name}: HTTP {r.status_code}")
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        out[name] = (statistics.median(samples), p95)
    return out


def print_plans(url: str, tenant: str) -> None:
    from app.store import dashboard as queries

    names = [f"queue{n}" for n in range(QUEUES)]
    with_dq = [x for n in names for x in (n, n + ".DQ")]
    statements = {
        "dead list (operator)": (queries.list_jobs("dead", [], per_queue=True, cursor=False,
                                                   since=False, until=False),
                                 {"names": with_dq, "limit": 51}),
        "dead list (tenant filter)": (queries.list_jobs("dead", ["tenant"], per_queue=False,
                                                        cursor=False, since=False, until=False),
                                      {"tenant": tenant, "limit": 51}),
        "dead list, error text (operator)": (
            queries.list_jobs("dead", ["error"], per_queue=True, cursor=False, since=False,
                              until=False),
            {"names": with_dq, "limit": 51, "error": "%answered 403%"}),
        "completed last hour by minute": (queries.COMPLETED_BY_MINUTE, {"names": with_dq}),
        "waiting and delayed counts": (queries.QUEUED, {}),
        "tenant: completed last hour (as the owner, tenant named)": (
            queries.TENANT_COMPLETED_BY_MINUTE.replace(
                "(SELECT pgjobs.current_tenant())", "%(tenant)s::uuid"), {"tenant": tenant}),
        "queue names": (queries.QUEUE_NAMES, {}),
    }
    with connect(url) as conn:
        for title, (sql, params) in statements.items():
            rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql,
                                params).fetchall()
            print(f"\n-- {title}")
            for (line,) in rows:
                print(f"   {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--plans", action="store_true", help="print the key query plans")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database (pgjobs_bench_dashboard) afterwards")
    args = parser.parse_args(argv)

    from app.dashboard.admins import create_admin
    from app.dashboard.passwords import hash_password

    dbs = Databases(admin_url())
    url = dbs.create("pgjobs_bench_dashboard")
    proc = None
    try:
        tenants = prepare(url, args.rows)
        os.environ["DATABASE_URL"] = url
        create_admin(tenants[0], "bench@tenant", "bench-password", iterations=1000)  # type: ignore[arg-type]
        proc, base = start_dashboard(url, hash_password("bench-password", iterations=1000))
        if args.plans:
            print_plans(url, tenants[0])
        with connect(url) as conn:
            job = conn.execute("SELECT message_id FROM dramatiq.queue WHERE state = 'rejected' "
                               "LIMIT 1").fetchone()
        assert job is not None
        operator_pages = {
            "queues": "/queues",
            "jobs: waiting": "/jobs?status=waiting",
            "jobs: dead": "/jobs?status=dead",
            "jobs: completed, one queue": "/jobs?status=completed&queue=queue3",
            "jobs: dead, one tenant": f"/jobs?status=dead&tenant={tenants[5]}",
            "jobs: dead, error text": "/jobs?status=dead&error=answered%20403",
            "job detail": f"/jobs/{job[0]}",
            "dead letters by error": "/dead",
            "workers": "/workers",
            "limits": "/limits",
            "recurring": "/recurring",
        }
        tenant_pages = {
            "tenant: queues": "/queues",
            "tenant: jobs dead": "/jobs?status=dead",
            "tenant: jobs completed": "/jobs?status=completed",
            "tenant: dead letters": "/dead",
        }
        results: dict[str, tuple[float, float]] = {}
        for user, pages in (("bench", operator_pages), ("bench@tenant", tenant_pages)):
            with httpx.Client(base_url=base, timeout=60) as client:
                client.post("/login", data={"username": user, "password": "bench-password"})
                results.update(time_pages(client, pages, args.repeats))
        print(f"\ndashboard pages with {args.rows:,} job rows ({args.repeats} requests each, "
              f"HTTP on 127.0.0.1, target < {TARGET_MS:.0f} ms)")
        print(f"{'page':34} {'median ms':>10} {'p95 ms':>8}  target")
        for name, (median, p95) in results.items():
            verdict = "met" if median < TARGET_MS else "MISSED"
            print(f"{name:34} {median:10.1f} {p95:8.1f}  {verdict}")
        return 0 if all(m < TARGET_MS for m, _ in results.values()) else 1
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        from app.db.engine import dispose_engines

        dispose_engines()
        if not args.keep:
            dbs.drop_all()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
