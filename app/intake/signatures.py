"""Signature schemes, constant time: every active secret is tried, the result is combined.

Each function returns True when one of ``secrets`` signed the request. Comparisons use
``hmac.compare_digest`` and never stop at the first match, so timing says nothing about which
secret (or how much of a signature) was right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def _digest(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _any(expected: Sequence[bytes], given: bytes) -> bool:
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate, given)
    return matched


def base64_hmac(secrets: Sequence[str], body: bytes, header: str) -> bool:
    """Shopify ``X-Shopify-Hmac-Sha256`` and WooCommerce ``X-WC-Webhook-Signature``."""
    given = header.strip().encode()
    return _any([base64.b64encode(_digest(s, body)) for s in secrets], given)


def hex_hmac(secrets: Sequence[str], body: bytes, header: str) -> bool:
    """The generic header: ``sha256=<hex>`` (or bare hex) of HMAC-SHA256 over the raw body."""
    value = header.strip()
    if value.lower().startswith("sha256="):
        value = value[len("sha256="):]
    given = value.lower().encode()
    return _any([_digest(s, body).hex().encode() for s in secrets], given)


def slack_v0(secrets: Sequence[str], body: bytes, timestamp: str, header: str) -> bool:
    """Slack: ``v0=<hex>`` of HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    given = header.strip().encode()
    return _any([b"v0=" + _digest(s, base).hex().encode() for s in secrets], given)


def sign_hex(secret: str, body: bytes) -> str:
    """The generic header's value for ``body`` (for senders, tests and the README)."""
    return "sha256=" + _digest(secret, body).hex()


def sign_base64(secret: str, body: bytes) -> str:
    return base64.b64encode(_digest(secret, body)).decode()


def sign_slack(secret: str, body: bytes, timestamp: str) -> str:
    return "v0=" + _digest(secret, b"v0:" + timestamp.encode() + b":" + body).hex()
