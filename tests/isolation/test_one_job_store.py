"""One owner for the job row: SQL on the job store's tables lives in ``app/store`` only.

Every statement and state transition on the job table (and the broker tables around it)
is the job store's; broker, middleware, maintenance, operations, scheduler and the rest of
the application call it. A statement naming one of those tables anywhere else fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLES = r"dramatiq\.(queue|workers|paused_queues|queue_limits|rate_windows|limit_weights)\b"
VIEWS = r"jobs\.(jobs|queue_stats|by_tenant|failed|scheduled|recent|active|workers|" \
        r"limit_status)\b"
STATEMENT = re.compile(
    rf"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+(\"?)({TABLES}|{VIEWS})", re.IGNORECASE)


def test_sql_on_the_job_tables_is_in_the_job_store_only() -> None:
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        if path.is_relative_to(ROOT / "app" / "store"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if STATEMENT.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_store_is_where_the_statements_are() -> None:
    """The check above would pass on an empty tree: the statements must exist somewhere."""
    found = [p.name for p in (ROOT / "app" / "store").glob("*.py")
             if STATEMENT.search(p.read_text())]
    assert {"claim.py", "outcomes.py", "workers.py", "reads.py", "retention.py",
            "operator.py"} <= set(found)
