"""``POST /webhooks/{source}`` (and ``/webhooks/{source}/{token}``): verify, store once, 202.

The order of checks is the order of cost and trust: the source and content type (no I/O),
the size (before reading), the sender's identity (a cached lookup), the signature (constant
time, against that tenant's live secrets), and only then the body's content. A request that
fails a check leaves nothing behind; one that passes them all is stored with its job in one
transaction and acknowledged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.intake import signatures
from app.intake.body import json_object, media_type, read_limited
from app.intake.credentials import Credentials
from app.intake.errors import UNAVAILABLE, unavailable
from app.intake.metrics import observe
from app.intake.refusals import Refusal, refuse
from app.intake.sources import JSON, SOURCES, TOKEN_HEADER, Source
from app.intake.state import IntakeState, state_of
from app.intake.store import store
from app.jobs.hooks import describe
from app.services.webhook_events import NewEvent
from app.services.webhook_payloads import PayloadError, identify

logger = logging.getLogger("app.intake")

#: Request headers never stored with an event (they authenticate, they are not the event).
DROPPED_HEADERS = frozenset({"authorization", "cookie", TOKEN_HEADER})


def kept_headers(request: Request) -> dict[str, str]:
    """The headers a reprocessing may need: content type, sender's ``x-*`` headers."""
    return {k: v[:1000] for k, v in request.headers.items()
            if (k.startswith("x-") or k in ("content-type", "user-agent"))
            and k not in DROPPED_HEADERS}


async def receive(request: Request) -> Response:
    name = request.path_params["source"]
    label = name if name in SOURCES else "unknown"
    started = time.perf_counter()
    ids: dict[str, Any] = {}
    try:
        response = await _receive(request, state_of(request), name, ids)
    except Refusal as refusal:
        response = refuse(label, refusal, **ids)
    except UNAVAILABLE:
        response = refuse(label, unavailable(state_of(request).settings.retry_after_seconds),
                          **ids)
    observe(label, response.status_code, time.perf_counter() - started)
    return response


async def _receive(request: Request, state: IntakeState, name: str,
                   ids: dict[str, Any]) -> Response:
    source = SOURCES.get(name)
    if source is None:
        raise Refusal(404, "unknown_source", f"unknown webhook source {name!r}; known: "
                      f"{', '.join(sorted(SOURCES))}")
    content_type = media_type(request, (JSON,))
    body = await read_limited(request, state.settings.max_body_bytes)
    creds = await _credentials(request, state, source)
    ids.update(tenant=creds.tenant_id, endpoint=creds.endpoint_id)
    _verify(request, source, creds, body)
    payload = json_object(body)
    try:
        identity = identify(name, payload, request.headers, body)
    except ValidationError as exc:
        raise Refusal(400, "malformed_body", f"{name} payload: "
                      f"{describe(exc).removeprefix('ValidationError: ')}") from None
    except PayloadError as exc:
        raise Refusal(400, "malformed_body", str(exc)) from None
    event = NewEvent(source=name, external_event_id=identity.event_id,
                     event_type=identity.event_type, payload=payload,
                     headers=kept_headers(request), raw_body=body, content_type=content_type,
                     endpoint_id=creds.endpoint_id)
    stored = await run_in_threadpool(store, state.engine, creds.tenant_id, event)
    if stored.duplicate:
        logger.info("event=webhook_duplicate source=%s tenant=%s endpoint=%s", name,
                    creds.tenant_id, creds.endpoint_id)
        return JSONResponse({"status": "duplicate"}, status_code=200)
    logger.info("event=webhook_accepted source=%s tenant=%s webhook_event=%s job_id=%s",
                name, creds.tenant_id, stored.webhook_event_id, stored.job_id)
    return JSONResponse({"status": "accepted", "id": str(stored.webhook_event_id)},
                        status_code=202)


async def _credentials(request: Request, state: IntakeState, source: Source) -> Credentials:
    token = request.path_params.get("token") or request.headers.get(TOKEN_HEADER)
    creds: Credentials | None
    cache = state.credentials
    if token:
        creds = (cache.cached_token(source.name, token)
                 or await run_in_threadpool(cache.by_token, source.name, token))
    elif source.key_header and request.headers.get(source.key_header):
        key = request.headers[source.key_header]
        creds = (cache.cached_key(source.name, key)
                 or await run_in_threadpool(cache.by_key, source.name, key))
    else:
        named = f" or the {source.key_header} header" if source.key_header else ""
        raise Refusal(404, "unknown_tenant", "no endpoint token: put it in the URL "
                      f"(/webhooks/{source.name}/TOKEN), the {TOKEN_HEADER} header{named}")
    if creds is None:
        raise Refusal(404, "unknown_tenant", f"no {source.name} endpoint matches this request")
    return creds


def _verify(request: Request, source: Source, creds: Credentials, body: bytes) -> None:
    header = next((request.headers[h] for h in source.signature_headers
                   if h in request.headers), None)
    if not header:
        raise Refusal(401, "missing_signature",
                      f"missing signature header {source.signature_headers[0]}")
    secrets = creds.active_secrets()
    check = signatures.base64_hmac if source.scheme == "base64" else signatures.hex_hmac
    if not secrets or not check(secrets, body, header):
        raise Refusal(401, "bad_signature", "signature does not verify")
