"""The dashboard's ASGI app: sign-in, pages, confirmations, actions and the live stream.

State-changing requests are POSTs that carry the session's CSRF token (a form field or the
``X-CSRF-Token`` header); every action is reached through a confirmation page (a GET that
changes nothing and shows what will happen) and recorded in the audit table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.config import get_settings
from app.dashboard import actions
from app.dashboard.auth import (
    FAILED,
    Authenticator,
    LoginLimiter,
    csrf_ok,
    parse_operators,
    session_data,
    viewer_from,
)
from app.dashboard.bulk import BulkRunner
from app.dashboard.db import Database
from app.dashboard.filters import BadInput, Cursor, JobFilter, job_ids
from app.dashboard.live import Hub, Listener, sse
from app.dashboard.masking import Masker
from app.dashboard.pages import TEMPLATES, Pages, environment
from app.dashboard.settings import DashboardSettings
from app.dashboard.viewer import Viewer

logger = logging.getLogger("pgjobs.dashboard")

STATIC = TEMPLATES.parent / "static"
OPERATOR_PAGES = ("workers", "recurring", "limits")
#: A live stream ends after this long; the browser reconnects, which re-checks the session.
STREAM_SECONDS = 600.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class Dashboard:
    """Everything one dashboard process holds: settings, connections, live hub, bulk runner."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.db = Database()
        self.env = environment()
        self.pages = Pages(self.db, self.env, Masker.from_setting(settings.mask_fields),
                           settings.page_size)
        self.auth = Authenticator(self.db, parse_operators(settings.operators),
                                  LoginLimiter(settings.login_attempts,
                                               settings.login_window_seconds))
        self.hub = Hub(settings.live_interval)
        self.listener = Listener(get_settings().app_database_url, self.hub.publish)
        self.bulk = BulkRunner(self.db, settings.batch_size)

    # -- helpers ------------------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **context: Any
               ) -> HTMLResponse:
        viewer = context.get("viewer")
        html = self.env.get_template(name).render(
            request=request, csrf=request.session.get("csrf", ""),
            flash=request.session.pop("flash", None), nav=_nav(viewer), **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    async def viewer(self, request: Request) -> Viewer:
        viewer = viewer_from(request.session)
        if viewer is None:
            raise Redirect(f"/login?next={_safe_next(request.url.path)}")
        if not await run_in_threadpool(self.auth.still_valid, viewer):
            request.session.clear()
            raise Redirect("/login")
        return viewer

    async def form(self, request: Request) -> dict[str, Any]:
        """The POSTed form, once the CSRF token bound to the session is checked."""
        form = await request.form()
        token = form.get("csrf") or request.headers.get("x-csrf-token")
        if not csrf_ok(request.session, str(token) if token else None):
            raise PermissionError("missing or wrong CSRF token: reload the page and try again")
        data: dict[str, Any] = {k: v for k, v in form.multi_items() if k != "id"}
        data["id"] = [str(v) for v in form.getlist("id")]
        return data

    # -- sign in and out -------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self.render(request, "login.html", next=_safe_next(request.query_params.get(
            "next", "/")))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username") or "")
        password = str(form.get("password") or "")
        next_url = _safe_next(str(form.get("next") or "/"))
        client = request.client.host if request.client else "?"
        keys = (f"user:{username.strip().lower()}", f"ip:{client}")
        wait = self.auth.limiter.retry_after(*keys)
        if wait > 0:
            logger.warning("event=login_limited client=%s", client)
            return self.render(request, "login.html", 429, next=next_url,
                               error=f"too many failed sign-ins: try again in {wait:.0f} s")
        viewer = await run_in_threadpool(self.auth.login, username, password)
        if viewer is None:
            self.auth.limiter.failed(*keys)
            logger.warning("event=login_failed client=%s", client)
            return self.render(request, "login.html", 401, next=next_url, error=FAILED)
        self.auth.limiter.succeeded(keys[0])
        request.session.clear()  # a new session (and CSRF token) at every sign-in
        request.session.update(session_data(viewer))
        logger.info("event=login viewer=%s kind=%s tenant=%s", viewer.name, viewer.kind,
                    viewer.tenant_id)
        return RedirectResponse(next_url, status_code=303)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages ---------------------------------------------------------------------------------

    async def queues(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        data = await run_in_threadpool(self.pages.queues, viewer)
        return self.render(request, "queues.html", current="queues", **data)

    async def jobs(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        f = JobFilter.parse(request.query_params)
        after = request.query_params.get("after")
        cursor = Cursor.decode(after) if after else None
        data = await run_in_threadpool(self.pages.jobs, viewer, f, cursor)
        return self.render(request, "jobs.html", current="jobs", query=f.query(), **data)

    async def job(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        job_id = _path_uuid(request, "job_id")
        data = await run_in_threadpool(self.pages.job, viewer, job_id)
        status = 200 if data["detail"] is not None else 404
        return self.render(request, "job.html", status, current="jobs", **data)

    async def simple(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        name = request.url.path.strip("/")
        if name in OPERATOR_PAGES and not viewer.operator:
            return self.render(request, "error.html", 403, viewer=viewer,
                               message="this page is for operators")
        if name == "recurring":
            data = await run_in_threadpool(self._recurring, viewer, request)
        elif name == "audit":
            data = {"entries": await run_in_threadpool(actions.recent_audit, self.db, viewer),
                    "viewer": viewer}
        else:
            data = await run_in_threadpool(getattr(self.pages, name), viewer)
        return self.render(request, f"{name}.html", current=name, **data)

    def _recurring(self, viewer: Viewer, request: Request) -> dict[str, Any]:
        from app.dashboard import reads

        after = None
        task, tenant = request.query_params.get("task"), request.query_params.get("tenant")
        if task and tenant:
            try:
                after = (task, uuid.UUID(tenant))
            except ValueError:
                raise BadInput("tenant must be a UUID") from None
        with self.db.reader(viewer) as conn:
            return {"recurring": reads.recurring(conn, after=after), "viewer": viewer}

    async def bulk_page(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        data = await run_in_threadpool(self.pages.bulk, viewer, _path_uuid(request, "bulk_id"))
        status = 200 if data["bulk"] is not None else 404
        return self.render(request, "bulk.html", status, current="jobs", **data)

    # -- confirmations (GET, change nothing) and actions (POST, CSRF) ----------------------------

    async def confirm(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        kind = request.path_params["kind"]
        q = request.query_params
        action = q.get("action", "")
        context: dict[str, Any] = {"viewer": viewer, "kind": kind, "action": action,
                                   "next": _safe_next(q.get("next", "/queues"))}
        if kind == "jobs":
            if action not in actions.JOB_ACTIONS:
                raise BadInput(f"action must be one of {', '.join(actions.JOB_ACTIONS)}")
            context["ids"] = job_ids(q.getlist("id"))
        elif kind == "bulk":
            f = JobFilter.parse(q)
            if action not in ("retry", "cancel"):
                raise BadInput("action must be retry or cancel")
            context.update(filter=f, fields=f.as_dict())
        elif kind == "queue":
            if action not in actions.QUEUE_ACTIONS:
                raise BadInput(f"action must be one of {', '.join(actions.QUEUE_ACTIONS)}")
            if not viewer.operator:
                return self.render(request, "error.html", 403, viewer=viewer,
                                   message="only operators can pause, resume or clear queues")
            context["queue"] = q.get("queue", "")
        else:
            return self.render(request, "error.html", 404, viewer=viewer, message="not found")
        return self.render(request, "confirm.html", **context)

    async def act(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        data = await self.form(request)
        kind = request.path_params["kind"]
        action = str(data.get("action", ""))
        next_url = _safe_next(str(data.get("next") or "/queues"))
        try:
            if kind == "jobs":
                outcome = await run_in_threadpool(actions.run_job_action, self.db, viewer,
                                                  action, job_ids(data["id"]))
                message = outcome.summary + ("; skipped " + "; ".join(outcome.skipped)
                                             if outcome.skipped else "")
            elif kind == "queue" and action == "clear":
                bulk_id = await run_in_threadpool(self.bulk.start, viewer, "clear", None,
                                                  str(data.get("queue", "")))
                return RedirectResponse(f"/bulk/{bulk_id}", status_code=303)
            elif kind == "queue":
                outcome = await run_in_threadpool(actions.run_queue_action, self.db, viewer,
                                                  action, str(data.get("queue", "")))
                message = outcome.summary
            elif kind == "bulk":
                f = JobFilter.parse(data)
                bulk_id = await run_in_threadpool(self.bulk.start, viewer, action, f)
                return RedirectResponse(f"/bulk/{bulk_id}", status_code=303)
            else:
                return self.render(request, "error.html", 404, viewer=viewer,
                                   message="not found")
        except actions.ActionRefused as exc:
            return self.render(request, "error.html", exc.status, viewer=viewer,
                               message=str(exc))
        request.session["flash"] = message
        return RedirectResponse(next_url, status_code=303)

    # -- live ------------------------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        params = dict(request.query_params)
        try:
            feed = self.pages.feed(viewer, request.path_params["feed"], params)
        except (ValueError, BadInput) as exc:
            return PlainTextResponse(str(exc), status_code=400)

        async def stream() -> AsyncIterator[str]:
            yield ": live\n\n"
            deadline = time.monotonic() + STREAM_SECONDS
            async with self.hub.subscribe(feed) as queue:
                while time.monotonic() < deadline:
                    try:
                        fragments = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield sse(fragments)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "listening": self.listener.connected.is_set(),
                             "feeds": len(self.hub.feeds), "renders": self.hub.renders})

    # -- errors ----------------------------------------------------------------------------------

    async def on_redirect(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        if request.url.path.startswith("/live/"):
            return PlainTextResponse("sign in first", status_code=401)
        return RedirectResponse(exc.url, status_code=303)

    async def on_bad_input(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "error.html", 400, viewer=viewer_from(request.session),
                           message=str(exc))

    async def on_forbidden(self, request: Request, exc: Exception) -> Response:
        viewer = viewer_from(request.session)
        logger.warning("event=csrf_refused path=%s viewer=%s", request.url.path,
                       viewer.name if viewer else None)
        return self.render(request, "error.html", 403, viewer=viewer, message=str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.hub.bind(asyncio.get_running_loop())
        self.listener.start()
        await run_in_threadpool(self.db.open)
        logger.info("event=dashboard_started host=%s port=%s operators=%d",
                    self.settings.host, self.settings.port, len(self.auth.operators))
        try:
            yield
        finally:
            self.listener.stop()
            await run_in_threadpool(self.db.close)
            logger.info("event=dashboard_stopped")


def _nav(viewer: Viewer | None) -> list[tuple[str, str]]:
    if viewer is None:
        return []
    items = [("queues", "Queues"), ("jobs", "Jobs"), ("dead", "Dead letters")]
    if viewer.operator:
        items += [("workers", "Workers"), ("recurring", "Recurring"), ("limits", "Limits")]
    return [*items, ("audit", "Audit")]


def _safe_next(url: str) -> str:
    """Only a path on this site (never ``//host`` or a scheme): no open redirect."""
    if not url.startswith("/") or url.startswith("//") or "\\" in url or "\n" in url:
        return "/queues"
    return url


def _path_uuid(request: Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise BadInput(f"{name.replace('_', ' ')} must be a UUID") from None


def create_app(settings: DashboardSettings | None = None) -> Starlette:
    settings = settings or DashboardSettings.from_env()
    d = Dashboard(settings)
    routes = [
        Route("/", lambda request: RedirectResponse("/queues", status_code=303)),
        Route("/login", d.login_page, methods=["GET"]),
        Route("/login", d.login, methods=["POST"]),
        Route("/logout", d.logout, methods=["POST"]),
        Route("/queues", d.queues),
        Route("/jobs", d.jobs),
        Route("/jobs/{job_id}", d.job),
        *(Route(f"/{name}", d.simple) for name in ("dead", "audit", *OPERATOR_PAGES)),
        Route("/bulk/{bulk_id}", d.bulk_page),
        Route("/confirm/{kind}", d.confirm),
        Route("/actions/{kind}", d.act, methods=["POST"]),
        Route("/live/{feed}", d.live),
        Route("/healthz", d.health),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(
        SessionMiddleware, secret_key=settings.secret_key, session_cookie="pgjobs_dashboard",
        max_age=int(settings.session_seconds), same_site="strict",
        https_only=settings.secure_cookie,
    )]
    app = Starlette(routes=routes, middleware=middleware, lifespan=d.lifespan,
                    exception_handlers={Redirect: d.on_redirect, BadInput: d.on_bad_input,
                                        PermissionError: d.on_forbidden})
    app.state.dashboard = d
    return app
