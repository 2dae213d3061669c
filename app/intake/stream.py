"""``GET /tenants/{id}/activity/stream``: the tenant's activity as Server-Sent Events.

Authenticated by a per-tenant API token (``Authorization: Bearer``, stored as a SHA-256
hash, resolved by ``intake.resolve_api_token``); a token opens its own tenant's feed only.
Each stream waits on the process's one LISTEN connection, then reads what is new under the
tenant's RLS. Every event carries ``id: <seq>``: a client that reconnects with
``Last-Event-ID`` resumes right after it and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.db.engine import raw_connection
from app.intake import feed, queries
from app.intake.credentials import token_hash
from app.intake.errors import UNAVAILABLE, unavailable
from app.intake.metrics import STREAMS
from app.intake.refusals import Refusal, refuse
from app.intake.state import IntakeState, state_of

logger = logging.getLogger("app.intake")

#: Retry soon after a row of a transaction still running was seen: it settles in ms.
PENDING_RETRY = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def resolve_api_token(engine: Engine, token: str) -> uuid.UUID | None:
    with engine.connect() as conn:
        row = raw_connection(conn).execute(queries.RESOLVE_API_TOKEN,
                                           {"hash": token_hash(token)}).fetchone()
        conn.rollback()
    return row[0] if row else None


async def activity_stream(request: Request) -> Response:
    state = state_of(request)
    try:
        tenant, cursor = await _open(request, state)
    except Refusal as refusal:
        return refuse("activity_stream", refusal)
    except UNAVAILABLE:
        return refuse("activity_stream", unavailable(state.settings.retry_after_seconds))
    logger.info("event=stream_opened tenant=%s", tenant)
    return StreamingResponse(
        _events(state, tenant, cursor), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _open(request: Request, state: IntakeState) -> tuple[uuid.UUID, feed.Cursor]:
    try:
        wanted = uuid.UUID(request.path_params["tenant_id"])
    except ValueError:
        raise Refusal(404, "unknown_tenant", "not a tenant id (a UUID)") from None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "missing_token", "send Authorization: Bearer <API token>",
                      headers={"WWW-Authenticate": "Bearer"})
    tenant = await run_in_threadpool(resolve_api_token, state.engine, token.strip())
    if tenant is None:
        raise Refusal(401, "bad_token", "unknown or revoked API token",
                      headers={"WWW-Authenticate": "Bearer"})
    if tenant != wanted:
        raise Refusal(403, "wrong_tenant", "this API token does not open that tenant's feed")
    cursor = await run_in_threadpool(feed.start, state.engine, tenant,
                                     request.headers.get("last-event-id"))
    return tenant, cursor


async def _events(state: IntakeState, tenant: uuid.UUID,
                  cursor: feed.Cursor) -> AsyncIterator[str]:
    wake = state.listener.subscribe(tenant)
    STREAMS.inc()
    pending_round = 0
    try:
        yield "retry: 2000\n\n"
        while True:
            wake.clear()
            try:
                rows, pending, more = await run_in_threadpool(feed.read, state.engine,
                                                              tenant, cursor)
            except UNAVAILABLE:
                rows, pending, more = [], False, False
                logger.warning("event=stream_read_failed tenant=%s", tenant)
            for row in rows:
                cursor = feed.Cursor(row.xid, row.seq)
                yield f"id: {row.seq}\nevent: activity\ndata: {json.dumps(row.as_json())}\n\n"
            if more:
                continue
            if pending:
                timeout = PENDING_RETRY[min(pending_round, len(PENDING_RETRY) - 1)]
                pending_round += 1
            else:
                pending_round = 0
                timeout = min(state.settings.keepalive_seconds,
                              state.settings.feed_poll_seconds)
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                if not pending:
                    yield ": keepalive\n\n"
    finally:
        state.listener.unsubscribe(tenant, wake)
        STREAMS.dec()
        logger.info("event=stream_closed tenant=%s", tenant)
