"""Secrets at rest: seal a value before storing it, unseal it when it is needed.

Per-tenant secrets (webhook signing secrets, provider API keys, SMTP passwords, OAuth
tokens) are stored sealed with Fernet (AES-128-CBC + HMAC-SHA256), so a database dump or a
tenant that could read the column by mistake learns nothing. Keys come from
``JOBS_SECRET_KEYS``: comma-separated Fernet keys, the first one seals, every one unseals,
so a key is rotated by putting a new one first and re-sealing (:func:`reseal`) before
dropping the old one. Without the variable (a developer machine) a key is generated once
into ``$JOBS_DATA_DIR/secret.key`` (mode 0600) and shared by every local process.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENV = "JOBS_SECRET_KEYS"
_lock = threading.Lock()


class SealingError(ValueError):
    """A sealed value cannot be opened (wrong or retired key, or corrupted data)."""


def _key_file() -> Path:
    from app.devdb import data_dir

    return data_dir() / "secret.key"


def _local_key() -> bytes:
    path = _key_file()
    with _lock:
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race: use its key
                return path.read_bytes().strip()
            with os.fdopen(fd, "wb") as out:
                out.write(key)
            return key


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    raw = os.environ.get(ENV, "").strip()
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()] if raw else [_local_key()]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise SealingError(f"{ENV} must hold comma-separated Fernet keys "
                           "(Fernet.generate_key())") from None


def seal(value: str) -> bytes:
    """``value`` encrypted with the current key."""
    return _fernet().encrypt(value.encode())


def unseal(token: bytes | memoryview) -> str:
    """The value a :func:`seal` call encrypted; ``SealingError`` if no key opens it."""
    try:
        return _fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise SealingError("a sealed secret cannot be opened with the configured keys "
                           f"({ENV})") from None


def reseal(token: bytes | memoryview) -> bytes:
    """``token`` sealed again with the current key (key rotation)."""
    try:
        return _fernet().rotate(bytes(token))
    except InvalidToken:
        raise SealingError("a sealed secret cannot be opened with the configured keys "
                           f"({ENV})") from None


def reset_keys() -> None:
    """Forget the cached keys (after changing ``JOBS_SECRET_KEYS`` in this process)."""
    _fernet.cache_clear()
