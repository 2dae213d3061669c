"""Which exceptions mean "the database is unavailable": answered 503 with Retry-After."""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

from app.intake.refusals import Refusal

UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError, sa_exc.OperationalError, sa_exc.TimeoutError,
    sa_exc.InterfaceError,
)


def unavailable(retry_after: int) -> Refusal:
    return Refusal(503, "database_unavailable",
                   "the database is unavailable; retry later",
                   headers={"Retry-After": str(retry_after)})
