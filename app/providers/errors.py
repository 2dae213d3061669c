"""Provider failures, classified once so actors decide retry vs dead letter by type.

``RetryableError`` (timeouts, connection errors, 5xx, 429) is worth another attempt;
``PermanentError`` (other 4xx, a refused credential, a malformed answer) is not: actors list
it in ``throws`` so it goes straight to the dead letters with its message. Messages name the
provider, the HTTP status and the provider's own error code or text (cut short), never a
request body, a token or a recipient's content.
"""

from __future__ import annotations

import re

MAX_DETAIL = 300
#: Credential-looking words a provider may echo in an error (OpenAI prints part of a wrong
#: key, a proxy may print a header): replaced before the message is kept anywhere.
SECRET = re.compile(r"(?i)\b(?:bearer\s+\S+|sk-[\w*.-]+|xox[abprs]-[\w-]+|"
                    r"shp(?:at|ca|pa|ss)_\w+|c[ks]_\w+)")


def redact(text: str) -> str:
    return SECRET.sub("[redacted]", text)


class ProviderError(Exception):
    """A call to ``provider`` failed; ``status`` is the HTTP status when there was one."""

    retryable = False

    def __init__(self, provider: str, detail: str, *, status: int | None = None,
                 code: str | None = None) -> None:
        self.provider = provider
        self.status = status
        self.code = code
        self.detail = redact(detail)[:MAX_DETAIL]
        where = f"{provider} HTTP {status}" if status is not None else provider
        super().__init__(f"{where}: {self.detail}")


class RetryableError(ProviderError):
    """Transient: a timeout, a lost connection, a 5xx, a rate limit."""

    retryable = True


class RateLimited(RetryableError):
    """HTTP 429 (or the provider's equivalent); ``retry_after`` in seconds when it said."""

    def __init__(self, provider: str, detail: str, *, retry_after: float | None,
                 status: int | None = 429, code: str | None = None) -> None:
        super().__init__(provider, detail, status=status, code=code)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """Retrying would fail the same way: a 4xx, bad credentials, an unusable answer."""
