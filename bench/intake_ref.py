"""The reference for the intake bench: a bare Starlette endpoint that commits one row.

Same server (uvicorn, same worker count), same connection pooling (SQLAlchemy, psycopg 3,
threadpool for the blocking call) and same role as the intake, doing only the part no
intake can skip: one INSERT, one COMMIT. ``uvicorn --factory bench.intake_ref:create_app``.
"""

from __future__ import annotations

import os

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db.engine import engine_for

TABLE = """
CREATE TABLE IF NOT EXISTS bench_intake_ref (id bigserial PRIMARY KEY, body bytea NOT NULL,
                                             received_at timestamptz NOT NULL DEFAULT now());
GRANT SELECT, INSERT ON bench_intake_ref TO app_user;
GRANT USAGE ON SEQUENCE bench_intake_ref_id_seq TO app_user;
"""
INSERT = text("INSERT INTO bench_intake_ref (body) VALUES (:body)")


def create_app() -> Starlette:
    engine = engine_for(os.environ["BENCH_REF_URL"], 10)

    def commit_one(body: bytes) -> None:
        with engine.begin() as conn:
            conn.execute(INSERT, {"body": body})

    async def receive(request: Request) -> JSONResponse:
        await run_in_threadpool(commit_one, await request.body())
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Starlette(routes=[Route("/ref", receive, methods=["POST"])])
