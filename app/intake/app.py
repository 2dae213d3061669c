"""The intake's ASGI application: routes, shared state, the LISTEN task's lifetime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db.engine import engine_for
from app.intake import assistant, health, slack, stream, webhooks  # noqa: F401  (assistant: its Slack handlers)
from app.intake.credentials import CredentialCache
from app.intake.listener import Listener
from app.intake.settings import IntakeSettings
from app.intake.state import IntakeState


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "not_found", "detail": f"no route {request.url.path}"},
                        status_code=404)


async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "method_not_allowed",
                         "detail": f"{request.method} is not allowed on {request.url.path}"},
                        status_code=405)


def create_app(settings: IntakeSettings | None = None) -> Starlette:
    """The app (uvicorn calls it as a factory: ``--factory app.intake.app:create_app``)."""
    import app.actors  # noqa: F401  (the broker, the actors and the families' Slack handlers)
    from app.ops.health import script_heads

    logging.getLogger("alembic").setLevel(logging.WARNING)  # script_heads() is chatty at INFO

    settings = settings or IntakeSettings.from_env()
    if not logging.getLogger().handlers:  # a uvicorn worker process: nobody configured it
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = engine_for(settings.database_url, settings.pool_size)
    credentials = CredentialCache(engine, settings.credentials_cache_seconds)
    state = IntakeState(settings=settings, engine=engine, credentials=credentials,
                        listener=Listener(settings.listen_url, credentials),
                        heads=frozenset(script_heads()))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.listener.start()
        try:
            yield
        finally:
            await state.listener.stop()

    routes = [
        Route("/webhooks/{source}", webhooks.receive, methods=["POST"]),
        Route("/webhooks/{source}/{token}", webhooks.receive, methods=["POST"]),
        Route("/slack/events", slack.events, methods=["POST"]),
        Route("/slack/events/{token}", slack.events, methods=["POST"]),
        Route("/slack/interactivity", slack.events, methods=["POST"]),
        Route("/slack/interactivity/{token}", slack.events, methods=["POST"]),
        Route("/tenants/{tenant_id}/activity/stream", stream.activity_stream, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
    ]
    application = Starlette(routes=routes, lifespan=lifespan,
                            exception_handlers={404: not_found, 405: not_allowed})
    # "/webhooks/test/" is not a route: a 404 names it, no redirect a sender would not follow.
    application.router.redirect_slashes = False
    application.state.intake = state
    return application
