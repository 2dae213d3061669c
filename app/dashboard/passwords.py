"""Password hashes: PBKDF2-HMAC-SHA256 from the standard library, compared in constant time.

Format ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (urlsafe base64), the same for operators
(in ``DASHBOARD_OPERATORS``) and tenant admins (in their table), so one function checks both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000
MIN_LENGTH = 8


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def check_hash_format(encoded: str) -> None:
    """Raise ValueError naming what is wrong with a stored hash (never echoing it)."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        raise ValueError(f"not a {ALGORITHM}$iterations$salt$hash value "
                         "(make one with: python -m app.dashboard hash)")


def verify_password(password: str, encoded: str) -> bool:
    try:
        check_hash_format(encoded)
        _, iterations, salt, digest = encoded.split("$")
        expected = _unb64(digest)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


#: Checked against when a username is unknown, so a miss costs as much time as a hit.
DUMMY_HASH = f"{ALGORITHM}${ITERATIONS}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"
