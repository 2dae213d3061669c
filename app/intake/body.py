"""Reading a request body safely: content type first, size bounded before and while reading."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from app.intake.refusals import Refusal


def media_type(request: Request, accepted: tuple[str, ...]) -> str:
    """The request's media type if it is one of ``accepted``; 415 otherwise."""
    raw = request.headers.get("content-type", "")
    kind = raw.split(";", 1)[0].strip().lower()
    if kind not in accepted:
        shown = kind or "none"
        raise Refusal(415, "unsupported_media_type",
                      f"content type {shown!r} is not accepted here; send "
                      f"{' or '.join(accepted)}")
    return kind


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading anything; a chunked
    body is refused at the first chunk that crosses it.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Refusal(400, "bad_content_length",
                          "Content-Length is not a number") from None
        if size > limit:
            raise Refusal(413, "too_large", f"body of {size} bytes is over the limit of "
                          f"{limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise Refusal(413, "too_large", f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; 400 naming the problem (position, not content) otherwise."""
    if not body:
        raise Refusal(400, "malformed_body", "empty body: a JSON object is expected")
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        raise Refusal(400, "malformed_body", "body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Refusal(400, "malformed_body", f"body is not valid JSON: {exc.msg} at line "
                      f"{exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise Refusal(400, "malformed_body",
                      f"body must be a JSON object, got a JSON {type(value).__name__}")
    return value


def form_payload(body: bytes) -> dict[str, Any]:
    """Slack interactivity: a form whose ``payload`` field is a JSON object."""
    try:
        fields = parse_qs(body.decode(), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "malformed_body", "body is not a valid URL-encoded form") from None
    values = fields.get("payload")
    if not values:
        raise Refusal(400, "malformed_body", "form has no 'payload' field")
    return json_object(values[0].encode())
