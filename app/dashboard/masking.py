"""Secrets masked out of payloads before a page shows them.

A value is masked when its key looks secret (password, token, secret, key, authorization,
cookie, signature...), when it looks like a credential itself (``Bearer ...``), or when the
deployment marks it in ``DASHBOARD_MASK_FIELDS``: ``field`` for every actor, ``actor:field``
for one actor, ``actor:0`` for its first positional argument. Masking runs on the server, so a
masked value never reaches the browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MASK = "[masked]"

#: Words that make a key secret wherever they appear in it (``smtp_password``, ``apiKey``).
SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "authorization",
    "auth", "credential", "credentials", "signature", "cookie", "session", "private", "otp",
    "pin", "cvv", "iban",
})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_CREDENTIAL = re.compile(r"^(bearer|basic|token)\s+\S+", re.IGNORECASE)


def _words(key: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(key)} | {key.lower()}


def secret_key(key: str) -> bool:
    return bool(_words(key) & SECRET_WORDS)


@dataclass(frozen=True)
class Masker:
    #: Keys masked for every actor, and per actor (keys or positional indexes as text).
    everywhere: frozenset[str] = frozenset()
    per_actor: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_setting(cls, text: str) -> Masker:
        everywhere: set[str] = set()
        per_actor: dict[str, set[str]] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            actor, sep, name = item.rpartition(":")
            if sep and not (actor and name):
                raise ValueError(f"DASHBOARD_MASK_FIELDS: {item!r} is not field or actor:field")
            if sep:
                per_actor.setdefault(actor, set()).add(name.lower())
            else:
                everywhere.add(name.lower())
        return cls(frozenset(everywhere), {a: frozenset(f) for a, f in per_actor.items()})

    def _marked(self, actor: str | None) -> frozenset[str]:
        return self.everywhere | self.per_actor.get(actor or "", frozenset())

    def args(self, actor: str | None, args: Iterable[Any] | None) -> list[Any]:
        marked = self._marked(actor)
        return [MASK if str(i) in marked else self.value(actor, v)
                for i, v in enumerate(args or [])]

    def value(self, actor: str | None, value: Any) -> Any:
        """``value`` with every secret-looking or marked entry replaced, at any depth."""
        marked = self._marked(actor)
        if isinstance(value, dict):
            return {k: MASK if (secret_key(str(k)) or str(k).lower() in marked)
                    else self.value(actor, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(actor, v) for v in value]
        if isinstance(value, str) and _CREDENTIAL.match(value):
            return MASK
        return value
