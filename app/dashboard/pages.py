"""What each page and each live fragment renders, for one viewer (sync: runs in a thread).

A page's live part is a template fragment (``_name.html``) rendered both into the page and,
later, by its live feed: one template, so the first view and the updates never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.dashboard import reads
from app.dashboard.db import Database
from app.dashboard.filters import Cursor, JobFilter
from app.dashboard.live import Feed, Payload
from app.dashboard.masking import Masker
from app.dashboard.viewer import Viewer
from app.store.dashboard import STATUSES

TEMPLATES = Path(__file__).parent / "templates"


def sparkline(values: list[int], width: int = 120, height: int = 24) -> str:
    """An inline SVG polyline of ``values`` (oldest first), scaled to its own maximum."""
    top = max(values) if values and max(values) > 0 else 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}"
                      for i, v in enumerate(values))
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} '
            f'{height}" role="img" aria-label="max {max(values, default=0)} per minute">'
            f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" '
            f'points="{points}"/></svg>')


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def when(value: Any) -> str:
    """A time in UTC, as every page shows (and the filters read) them."""
    if value is None:
        return "-"
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def environment() -> Environment:
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["spark"] = lambda values: Markup(sparkline(values))
    env.filters["age"] = age
    env.filters["when"] = when
    env.globals["STATUSES"] = list(STATUSES)
    return env


@dataclass
class Pages:
    db: Database
    env: Environment
    masker: Masker
    page_size: int

    def fragment(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    # -- data per page (each also feeds its live fragment) ----------------------------------

    def queues(self, viewer: Viewer) -> dict[str, Any]:
        with self.db.reader(viewer) as conn:
            return {"queues": reads.queues(conn, viewer), "viewer": viewer}

    def jobs(self, viewer: Viewer, f: JobFilter, cursor: Cursor | None = None
             ) -> dict[str, Any]:
        with self.db.reader(viewer) as conn:
            page = reads.list_jobs(conn, viewer, f, cursor, limit=self.page_size)
        return {"page": page, "filter": f, "viewer": viewer, "live": cursor is None}

    def job(self, viewer: Viewer, job_id: uuid.UUID) -> dict[str, Any]:
        with self.db.reader(viewer) as conn:
            detail = reads.job_detail(conn, viewer, job_id, self.masker)
        return {"detail": detail, "viewer": viewer, "job_id": job_id}

    def dead(self, viewer: Viewer) -> dict[str, Any]:
        with self.db.reader(viewer) as conn:
            return {"groups": reads.dead_groups(conn), "viewer": viewer}

    def workers(self, viewer: Viewer) -> dict[str, Any]:
        with self.db.reader(viewer) as conn:
            return {"workers": reads.workers(conn), "viewer": viewer}

    def limits(self, viewer: Viewer) -> dict[str, Any]:
        with self.db.reader(viewer) as conn:
            return {"limits": reads.limits(conn), "viewer": viewer}

    def bulk(self, viewer: Viewer, bulk_id: uuid.UUID) -> dict[str, Any]:
        from app.dashboard.actions import bulk

        row = bulk(self.db, bulk_id)
        if row is not None and not viewer.operator and row["admin_tenant_id"] != viewer.tenant_id:
            row = None  # another tenant's (or an operator's) action: not theirs to see
        return {"bulk": row, "viewer": viewer, "bulk_id": bulk_id}

    # -- live feeds -------------------------------------------------------------------------

    def _relevant(self, viewer: Viewer) -> Any:
        if viewer.operator:
            return None

        def relevant(ids: list[str]) -> bool:
            with self.db.reader(viewer) as conn:
                return bool(reads.visible(conn, [uuid.UUID(i) for i in ids]))

        return relevant

    def feed(self, viewer: Viewer, name: str, params: dict[str, str]) -> Feed:
        """The live feed of page ``name`` for ``viewer``; ValueError on unknown parameters."""
        scope = viewer.scope
        relevant = self._relevant(viewer)

        def job_event(p: Payload) -> bool:
            return "message_id" in p

        if name == "queues":
            return Feed(("queues", scope), lambda: {"queues": self.fragment(
                "_queues.html", **self.queues(viewer))}, job_event, relevant, every=5.0)
        if name == "jobs":
            f = JobFilter.parse(params)

            def job_matches(p: Payload) -> bool:
                return job_event(p) and (f.queue is None or p.get("queue") == f.queue)

            return Feed(("jobs", scope, f), lambda: {"jobs": self.fragment(
                "_jobs.html", **self.jobs(viewer, f))}, job_matches, relevant)
        if name == "job":
            job_id = uuid.UUID(params.get("id", ""))
            return Feed(("job", scope, job_id), lambda: {"job": self.fragment(
                "_job.html", **self.job(viewer, job_id))},
                lambda p: p.get("message_id") == str(job_id))
        if name == "dead":
            return Feed(("dead", scope), lambda: {"dead": self.fragment(
                "_dead.html", **self.dead(viewer))},
                lambda p: p.get("event") in ("dead", "enqueued", "cancelled"), relevant)
        if name == "workers" and viewer.operator:
            return Feed(("workers", scope), lambda: {"workers": self.fragment(
                "_workers.html", **self.workers(viewer))},
                lambda p: p.get("event") in ("active", "completed", "rescued"), every=2.0)
        if name == "limits" and viewer.operator:
            return Feed(("limits", scope), lambda: {"limits": self.fragment(
                "_limits.html", **self.limits(viewer))}, job_event, every=2.0)
        if name == "bulk":
            bulk_id = uuid.UUID(params.get("id", ""))
            return Feed(("bulk", scope, bulk_id), lambda: {"bulk": self.fragment(
                "_bulk.html", **self.bulk(viewer, bulk_id))},
                lambda p: p.get("bulk") == str(bulk_id), every=10.0)
        raise ValueError(f"no live feed {name!r} for this viewer")
