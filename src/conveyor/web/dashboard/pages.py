"""The dashboard's pages (GET) and the forms they post (POST), each a thin call to the
control function the API and CLI call for the same thing."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ...control import (
    cancel_job,
    pause_queue,
    purge_queue,
    resume_queue,
    retry_job,
)
from ...control.audit import record_change
from ...control.jobs import MAX_PAGE
from ...control.util import parse_duration, seconds_text, short, zoned_text
from ...errors import ConveyorError, JobNotFound
from ..audit import action_of, affected, did, error_code, target_of
from ..auth import AuthMode
from ..errors import as_response
from ..tokens import Role, TokenStore
from . import views
from .session import COOKIE, LoginRequired, Viewer, valid_form, viewer

if TYPE_CHECKING:
    from ...app import App
    from ...schedules import ScheduleBook

log = logging.getLogger("conveyor.web")
TEMPLATES = Path(__file__).parent / "templates"
FLASH = "conveyor_flash"
#: What a refused form held, one time: its page shows it again to be corrected.
TYPED = "conveyor_typed"
#: The CSRF field every form posts (module level: FastAPI reads the annotations by name).
Csrf = Annotated[str | None, Form()]
#: No other site may frame a page with buttons on it (clickjacking), and no link leaks
#: the page's address (it may hold filters) to another site.
HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}  # fmt: skip
#: Seconds between refreshes of pages whose figures move without events (heartbeat ages).
TICK = 5


def base(request: Request, prefix: str) -> str:
    """Where the dashboard is, as this request reached it: ``prefix`` under the path the
    app is mounted at (``root_path``: ``service.mount("/ops", create_api(app))``), so
    every link, redirect and cookie works mounted or not."""
    return str(request.scope.get("root_path", "")).rstrip("/") + prefix


@functools.cache
def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters["when"] = views.when
    templates.env.filters["ago"] = views.ago
    templates.env.filters["short"] = short
    templates.env.filters["seconds"] = seconds_text
    templates.env.filters["zoned"] = zoned_text
    templates.env.globals["node_kind"] = views.node_kind
    return templates


#: What a refusal says happened, by status, as its page's title (the message follows);
#: a page or form with more to say gives its own (``No such job``).
_TITLES = {400: "The address asks for something not valid", 401: "Log in first",
           403: "Not allowed", 404: "No such page", 405: "Not a page: a form's address",
           409: "Not possible in the job's state", 413: "Too large to take",
           422: "A value in the address is not valid", 500: "The server failed",
           503: "The job store does not answer"}  # fmt: skip


def title_of(status: int) -> str:
    return _TITLES.get(status, f"Refused (HTTP {status})")


def error_page(
    request: Request, prefix: str, status: int, message: str, title: str | None = None
) -> Response:
    """A refusal as a dashboard page (with its menu and a way back), never raw JSON."""
    if status == 405:
        message = "this address takes a form's POST (a button on a page), not a visit"
    context = {"me": None, "prefix": prefix, "flash": None, "operate": False, "admin": False,
               "path": request.url.path, "message": message, "title": title or title_of(status)}  # fmt: skip
    response = _templates().TemplateResponse(request, "missing.html", context, status_code=status)
    response.headers.update(HEADERS)
    return response


def _timestamp(value: str | None) -> float | None:
    """A ``datetime-local`` field (read as UTC) as POSIX seconds."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConveyorError(f"not a date and time: {value!r} (use YYYY-MM-DDTHH:MM)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _back(request: Request, home: str, fallback: str) -> str:
    """Where a form returns to: its page (the Referer, when it is a page of the dashboard
    at ``home``, on this host), else ``fallback``."""
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.netloc == request.headers.get("host") and parts.path.startswith(home + "/"):
            return parts.path + (f"?{parts.query}" if parts.query else "")
    return fallback


def routes(app: App, mode: AuthMode, prefix: str) -> APIRouter:  # noqa: C901 - one closure per route
    r = APIRouter(include_in_schema=False)
    templates = _templates()
    call = app.aio.call

    async def who(request: Request) -> Viewer:
        return await call(viewer, app, mode, request)

    async def page(
        request: Request,
        name: str,
        read: Callable[[], dict[str, Any]],
        *,
        live: str = "",
        tick: int = 0,
        missing: str = "No such page",
    ) -> Response:
        """``missing``: the title when what the page shows is not found (``No such job``)."""
        try:
            me = await who(request)
        except LoginRequired:
            return _to_login(request)
        try:
            data = await call(read)
        except ConveyorError as exc:
            status = as_response(exc).status_code  # the status the API answers for it
            title = missing if isinstance(exc, JobNotFound) else title_of(status)
            return _render(request, "missing.html", me, {"message": str(exc), "title": title},
                           status=status)  # fmt: skip
        return _render(request, name, me, {**data, "live": live, "tick": tick})

    def _render(
        request: Request, name: str, me: Viewer, data: dict[str, Any], status: int = 200
    ) -> Response:
        flash = unquote(request.cookies.get(FLASH, "")) or None
        typed = dict(parse_qsl(unquote(request.cookies.get(TYPED, ""))))
        context = {"me": me, "prefix": base(request, prefix), "flash": flash, "operate": me.can("operate"),
                   "admin": me.can("admin"), "path": request.url.path, "typed": typed,
                   "command": app.command, **data}  # fmt: skip
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(HEADERS)
        if flash:
            response.delete_cookie(FLASH, path=base(request, prefix))
        if TYPED in request.cookies:
            response.delete_cookie(TYPED, path=base(request, prefix))
        return response

    def _to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(
            f"{base(request, prefix)}/login?{urlencode({'next': target})}", status_code=303
        )

    async def act(
        request: Request,
        csrf: str | None,
        needed: Role,
        do: Callable[[], str],
        back: str,
        typed: dict[str, str] | None = None,
        shown: str | None = None,
    ) -> Response:
        """Run a form's change after checking the session, its role and its CSRF field;
        the outcome goes back to the page as a one-time message. If the change is refused,
        ``typed`` (the form's id under ``form``, and its fields) goes back too, so the
        page shows the form as the user filled it in. ``shown``: a page that says what a
        change that took has done itself, live (a job's, after its Cancel), so no
        one-time message goes with it, which would be as old as the click."""
        try:
            me = await who(request)
        except LoginRequired:
            return error_page(
                request, base(request, prefix), 401, "your session ended: log in again",
                "Your session ended",
            )  # fmt: skip
        if not valid_form(request, me, csrf):
            return error_page(
                request, base(request, prefix), 403,
                "refused: this form did not come from this dashboard (CSRF)",
                "Refused: the form did not come from this dashboard",
            )  # fmt: skip
        if not me.can(needed):
            await _audit(request, me, "forbidden", 403)
            return error_page(
                request, base(request, prefix), 403,
                f"refused: the {me.role} role cannot do this; it needs the {needed} role",
                f"Not allowed for the {me.role} role",
            )  # fmt: skip
        outcome, status = "ok", 303
        try:
            message = await call(do)
        except ConveyorError as exc:
            message = f"error: {exc}"
            answer = as_response(exc)  # the code and status the API answers for it
            outcome, status = error_code(answer), answer.status_code
        await _audit(request, me, outcome, status)
        if shown is not None and outcome == "ok":
            return RedirectResponse(shown, status_code=303)
        response = RedirectResponse(_back(request, base(request, prefix), back), status_code=303)
        # quoted: a cookie holds ASCII only, and messages quote names in any script
        secure = request.url.scheme == "https"  # as the session cookie
        response.set_cookie(FLASH, quote(message[:300]), path=base(request, prefix), httponly=True,
                            samesite="strict", secure=secure)  # fmt: skip
        if typed and outcome != "ok":
            response.set_cookie(TYPED, quote(urlencode(typed)), path=base(request, prefix), httponly=True,
                                samesite="strict", secure=secure)  # fmt: skip
        return response

    async def _audit(request: Request, me: Viewer, outcome: str, status: int) -> None:
        """The change in the audit trail beside the API's (its action names the page's
        form route); a failure to store it is logged, never the user's."""
        route = request.scope.get("route")
        params = {k: str(v) for k, v in request.path_params.items()}
        path = getattr(route, "path", request.url.path)
        path = (path if path.startswith(prefix) else prefix + path).replace(
            "{verb}", params.get("verb", "{verb}")
        )  # the verb named: "pause", not "{verb}"
        detail: dict[str, Any] = {"params": params}
        action = action_of(request, f"POST {path}", detail)
        await call(record_change, app, me.name, me.token_id, action, target_of(request, params),
                   outcome, status, detail)  # fmt: skip

    # -- login -----------------------------------------------------------------------------

    @r.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        return templates.TemplateResponse(
            request,
            "login.html",
            {
                "prefix": base(request, prefix),
                "next": next,
                "error": None,
                "me": None,
                "path": "",
                "command": app.command,
            },
        )

    @r.post("/login")
    async def login(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        next: Annotated[str, Form()] = "",
    ) -> Response:
        found = await call(TokenStore(app.backend).verify, token.strip())
        if found is None:
            return templates.TemplateResponse(
                request, "login.html",
                {"prefix": base(request, prefix), "next": next, "me": None, "path": "", "command": app.command,
                 "error": "That token is not valid (unknown, revoked or mistyped)."},
                status_code=401,
            )  # fmt: skip
        target = (
            next
            if next.startswith(base(request, prefix) + "/") and "//" not in next
            else f"{base(request, prefix)}/"
        )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token.strip(), path=base(request, prefix), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{base(request, prefix)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=base(request, prefix))
        return response

    # -- pages -----------------------------------------------------------------------------

    @r.get("/")
    async def overview(request: Request) -> Response:
        return await page(request, "overview.html", lambda: views.overview_page(app),
                          live=f"{base(request, prefix)}/events", tick=TICK)  # fmt: skip

    @r.get("/jobs")
    async def jobs(
        request: Request,
        state: Annotated[list[str] | None, Query()] = None,
        queue: str = "",
        task: str = "",
        worker: str = "",
        text: str = "",
        after: str = "",
        before: str = "",
        cursor: str = "",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        sort: Annotated[str, Query(pattern="^(newest|oldest)$")] = "newest",
    ) -> Response:
        def read() -> dict[str, Any]:
            filters = {"states": state or None, "queues": [queue] if queue else None,
                       "tasks": [task] if task else None, "workers": [worker] if worker else None,
                       "text": text or None, "oldest_first": sort == "oldest",
                       "created_after": _timestamp(after), "created_before": _timestamp(before)}  # fmt: skip
            data = views.jobs_page(app, filters, cursor or None, limit)
            shown = {"state": state or [], "queue": queue, "task": task, "worker": worker, "text": text,
                     "after": after, "before": before, "limit": limit,
                     "sort": "" if sort == "newest" else sort}  # fmt: skip
            keep = [(k, v) for k, v in shown.items() if v and k != "state"] + [
                ("state", s) for s in state or []
            ]
            more = (
                urlencode([*keep, ("cursor", data["next_cursor"])]) if data["next_cursor"] else None
            )
            return {
                **data,
                "filters": shown,
                "more": more,
                "first": urlencode(keep),
                "paged": bool(cursor),
            }

        return await page(request, "jobs.html", read, live=f"{base(request, prefix)}/events")

    @r.get("/jobs/{job_id}")
    async def job(request: Request, job_id: str, cancelled: str = "") -> Response:
        # any value: a page is never refused for how its query was spelled
        return await page(request, "job.html", lambda: views.job_page(app, job_id, cancelled=bool(cancelled)),
                          live=f"{base(request, prefix)}/events?{urlencode({'job': job_id})}",
                          missing="No such job")  # fmt: skip

    @r.get("/queues")
    async def queues(request: Request) -> Response:
        return await page(request, "queues.html", lambda: views.queues_page(app),
                          live=f"{base(request, prefix)}/events", tick=TICK)  # fmt: skip

    @r.get("/workers")
    async def workers(request: Request) -> Response:
        return await page(request, "workers.html", lambda: views.workers_page(app),
                          live=f"{base(request, prefix)}/events", tick=TICK // 2)  # fmt: skip

    @r.get("/schedules")
    async def schedules(request: Request) -> Response:
        return await page(request, "schedules.html", lambda: views.schedules_page(app), tick=TICK)

    @r.get("/workflows")
    async def workflows(request: Request, id: str = "") -> Response:
        if id:
            return RedirectResponse(
                f"{base(request, prefix)}/workflows/{id.strip()}", status_code=303
            )
        return await page(request, "workflows.html", lambda: views.workflows_page(app),
                          live=f"{base(request, prefix)}/events")  # fmt: skip

    @r.get("/workflows/{workflow_id}")
    async def workflow(request: Request, workflow_id: str) -> Response:
        return await page(request, "workflow.html", lambda: views.workflow_page(app, workflow_id),
                          live=f"{base(request, prefix)}/events", missing="No such workflow")  # fmt: skip

    @r.get("/audit")
    async def audit(
        request: Request,
        target: Annotated[str, Query(max_length=300)] = "",
        before: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        def read() -> dict[str, Any]:
            data = views.audit_page(app, before or None, target.strip() or None)
            keep = [("target", target.strip())] if target.strip() else []
            more = data["next_before"]
            return {**data, "target": target.strip(), "first": urlencode(keep), "paged": bool(before),
                    "more": urlencode([*keep, ("before", more)]) if more else None}  # fmt: skip

        return await page(request, "audit.html", read)

    # -- changes (POST only, CSRF-checked, role-checked) -------------------------------------

    @r.post("/jobs/{job_id}/cancel")
    async def cancel(
        request: Request, job_id: str, csrf: Csrf = None, terminate: Annotated[bool, Form()] = False
    ) -> Response:
        def do() -> str:
            return cancel_job(
                app, job_id, terminate=terminate, reason="cancelled from the dashboard"
            ).message

        did(request, "terminate" if terminate else "cancel")
        here = f"{base(request, prefix)}/jobs/{quote(job_id, safe='')}"
        return await act(request, csrf, "operate", do, here, shown=f"{here}?cancelled=1")

    @r.post("/jobs/{job_id}/retry")
    async def retry(request: Request, job_id: str, csrf: Csrf = None) -> Response:
        def do() -> str:
            return f"job {retry_job(app, job_id).id} queued again"

        return await act(request, csrf, "operate", do, f"{base(request, prefix)}/jobs/{job_id}")

    @r.post("/jobs")
    async def bulk(
        request: Request,
        action: Annotated[str, Form(pattern="^(cancel|retry)$")],
        ids: Annotated[list[str] | None, Form(max_length=MAX_PAGE)] = None,
        csrf: Csrf = None,
    ) -> Response:
        selected = ids or []
        done: list[str] = []
        refused: list[str] = []

        def do() -> str:
            for job_id in selected:
                try:
                    if action == "cancel":
                        revoked = cancel_job(app, job_id, reason="cancelled from the dashboard")
                        took = revoked.took_effect
                    else:
                        took = bool(retry_job(app, job_id))
                except ConveyorError as exc:  # finished or retried meanwhile, or refused
                    refused.append(str(exc))
                    continue
                if took:
                    done.append(job_id)
            verb = "cancelled" if action == "cancel" else "queued again"
            said = f"{len(done)} of {len(selected)} selected jobs {verb}"
            return f"{said}; {refused[0]}" if refused else said

        did(request, action)
        affected(request, selected, done)  # read once the change ran, as the entry is stored
        return await act(request, csrf, "operate", do, f"{base(request, prefix)}/jobs")

    @r.post("/queues/{name}/{verb}")
    async def queue_action(request: Request, name: str, verb: str, csrf: Csrf = None) -> Response:
        def do() -> str:
            if verb == "pause":
                return (
                    pause_queue(app, name) or f"queue {name} paused: workers claim nothing from it"
                )
            if verb == "resume":
                resume_queue(app, name)
                return f"queue {name} resumed"
            if verb == "purge":
                return f"queue {name}: {purge_queue(app, name)} waiting jobs revoked"
            raise ConveyorError(f"unknown queue action {verb!r}")

        return await act(request, csrf, "operate", do, f"{base(request, prefix)}/queues")

    @r.post("/schedules/{name}/{verb}")
    async def schedule_action(
        request: Request,
        name: str,
        verb: str,
        csrf: Csrf = None,
        cron: Annotated[str, Form(max_length=200)] = "",
        every: Annotated[str, Form(max_length=30)] = "",
    ) -> Response:
        book = app.schedules

        def do() -> str:
            if verb == "pause":
                book.pause(name)
                return f"schedule {name} paused"
            if verb == "resume":
                book.resume(name)
                return f"schedule {name} resumed"
            if verb == "run":
                return f"schedule {name}: job {book.run_now(name).id} queued now"
            if verb == "edit":
                return _edit_schedule(book, name, cron.strip(), every.strip())
            raise ConveyorError(f"unknown schedule action {verb!r}")

        typed = {"form": f"schedule-edit-{name}", "cron": cron, "every": every}
        return await act(
            request,
            csrf,
            "admin",
            do,
            f"{base(request, prefix)}/schedules",
            typed if verb == "edit" else None,
        )

    return r


def _edit_schedule(book: ScheduleBook, name: str, cron: str, every: str) -> str:
    """The schedules page's edit form: a cron expression or an interval, one of them."""
    if cron and every:
        raise ConveyorError("give a cron expression or an interval in seconds, not both")
    if not (cron or every):
        raise ConveyorError("give a cron expression or an interval in seconds")
    if every:
        try:  # as the CLI's --every reads it; the schedule checks the range
            seconds = parse_duration(every)
        except ValueError as exc:
            raise ConveyorError(str(exc)) from None
        book.update(name, every=seconds)
        return f"schedule {name} now fires every {seconds:g} s"
    book.update(name, cron=cron)
    return f"schedule {name} now fires on cron {cron!r}"
