"""What every route of one intake process shares: settings, engine, caches, the listener."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.requests import Request

from app.intake.credentials import CredentialCache
from app.intake.listener import Listener
from app.intake.settings import IntakeSettings


@dataclass
class IntakeState:
    settings: IntakeSettings
    engine: Engine
    credentials: CredentialCache
    listener: Listener
    #: Migration heads this code expects (read once: alembic is slow to import).
    heads: frozenset[str]


def state_of(request: Request) -> IntakeState:
    state: IntakeState = request.app.state.intake
    return state
