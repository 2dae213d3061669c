"""``/healthz`` (the process answers), ``/readyz`` (database reachable, schema at head),
``/metrics`` (Prometheus)."""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db.engine import raw_connection
from app.intake import queries
from app.intake.errors import UNAVAILABLE
from app.intake.metrics import render
from app.intake.state import state_of


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def applied_revisions(engine: Engine) -> set[str]:
    """The applied revisions; none when the schema predates the intake's function."""
    with engine.connect() as conn:
        try:
            rows = raw_connection(conn).execute(queries.SCHEMA_VERSIONS).fetchall()
        except psycopg.errors.UndefinedFunction:
            rows = []
        conn.rollback()
    return {r[0] for r in rows}


async def readyz(request: Request) -> Response:
    state = state_of(request)
    retry = {"Retry-After": str(state.settings.retry_after_seconds)}
    try:
        applied = await run_in_threadpool(applied_revisions, state.engine)
    except UNAVAILABLE:
        return JSONResponse({"status": "unavailable", "database": "unreachable"},
                            status_code=503, headers=retry)
    if applied != state.heads:
        return JSONResponse({"status": "unavailable", "database": "reachable",
                             "migrations": sorted(applied), "expected": sorted(state.heads),
                             "detail": "run alembic upgrade heads"},
                            status_code=503, headers=retry)
    return JSONResponse({"status": "ready", "migrations": sorted(applied),
                         "listening": state.listener.connected.is_set()})


async def metrics(request: Request) -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)
