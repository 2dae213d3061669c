"""Output for people (rich tables) and for scripts (JSON on stdout, one document per call)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

CELL_LIMIT = 60
#: Width when stdout is not a terminal (a pipe, a log): wide enough that ids never fold.
PIPE_WIDTH = 200
HEADERS = {
    "message_id": "id", "worker_id": "worker", "actor_name": "actor", "tenant_id": "tenant",
    "tenant_name": "name", "oldest_waiting_seconds": "oldest wait s",
    "heartbeat_age_seconds": "heartbeat age s", "running_seconds": "running s",
    "due_in_seconds": "due in s", "duration_seconds": "took s", "worker_alive": "worker alive",
}
#: Columns never folded (an id cut in two cannot be copied).
NO_WRAP = {"message_id", "worker_id", "tenant_id", "queue", "status"}


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(data), indent=2) + "\n")


def cell(value: Any, *, limit: int | None = CELL_LIMIT) -> str:
    """One value as table text: blanks for NULL, short times, compact JSON, ages in s."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.1f}"
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, dict | list):
        text = json.dumps(jsonable(value), separators=(",", ":"))
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def console() -> Console:
    # Created per call: tests capture sys.stdout, and a pipe gets no colour codes.
    out = Console(file=sys.stdout, soft_wrap=False)
    if not out.is_terminal:
        out.width = PIPE_WIDTH
    return out


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str | None = None,
    empty: str = "(none)", limit: int | None = CELL_LIMIT,
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(HEADERS.get(column, column.replace("_", " ")), overflow="fold",
                         no_wrap=column in NO_WRAP)
    for row in rows:
        table.add_row(*(cell(row.get(c), limit=limit) for c in columns))
    out = console()
    if rows:
        out.print(table)
    else:
        if title:
            out.print(title)
        out.print(empty)


def print_record(record: dict[str, Any], *, title: str | None = None) -> None:
    """One job: a field/value table, long values unabridged."""
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        table.add_row(key, cell(value, limit=None))
    console().print(table)


def print_line(text: str) -> None:
    console().print(text, highlight=False, markup=False)


def print_error(text: str) -> None:
    sys.stderr.write(f"pgjobs: {text}\n")
