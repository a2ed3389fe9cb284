"""The admin's Conveyor pages, over any backend (they call ``conveyor.control`` and
``app.schedules``, as the CLI and the REST API do):

- **Jobs** (read-only): filter by state, queue and task, search by id, a page per job
  with its arguments, result, error and traceback, attempts; actions *cancel* and *retry*
  (permission ``conveyor.change_job``);
- **Schedules** (editable): list with next run, add and edit (cron or interval, time
  zone, arguments, queue), pause, resume and delete.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from conveyor.control import jobs as control
from conveyor.control.audit import audited
from conveyor.control.liveness import worker_labels
from conveyor.control.util import parse_duration, seconds_text
from conveyor.errors import ConveyorError, UnknownTask
from conveyor.states import State

from .models import Job, Schedule
from .runtime import get_app

PAGE = 50


def _when(value: float | None) -> str:
    return "" if value is None else datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


class ConveyorAdmin(admin.ModelAdmin):
    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta,
                "title": title, "app_label": "conveyor", **extra}  # fmt: skip


@admin.register(Job)
class JobAdmin(ConveyorAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        app = get_app()
        if request.method == "POST":
            return self._act(request)
        params = request.GET
        state, queue, task = (
            params.get("state", ""),
            params.get("queue", ""),
            params.get("task", ""),
        )
        search = params.get("q", "").strip()
        error = None
        rows: list[Any] = []
        cursor = None
        try:
            if search:
                rows = list(app.backend.get_many([search]).values())
            else:
                page = control.list_jobs(
                    app, states=[state] if state else None, queues=[queue] if queue else None,
                    tasks=[task] if task else None, cursor=params.get("cursor") or None, limit=PAGE,
                )  # fmt: skip
                rows, cursor = page.jobs, page.next_cursor
        except ConveyorError as exc:
            error = str(exc)
        jobs = [{"id": r.id, "task": r.task, "queue": r.queue, "state": r.state.value,
                 "priority": r.priority, "attempt": r.attempt, "created": _when(r.created_at),
                 "finished": _when(r.finished_at)} for r in rows]  # fmt: skip
        filters = {"state": state, "queue": queue, "task": task, "q": search}
        return TemplateResponse(request, "conveyor/admin/jobs.html", self._context(
            request, "Jobs", jobs=jobs, error=error, cursor=cursor, filters=filters,
            states=[s.value for s in State], queues=app.declared_queues(), tasks=sorted(app.tasks),
            can_change=self.has_change_permission(request),
        ))  # fmt: skip

    def _act(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        app = get_app()
        action = request.POST.get("action")
        ids = request.POST.getlist("_selected_action")
        verb = JOB_ACTIONS.get(action or "")
        if verb is None or not ids:
            self.message_user(request, "Pick jobs and an action.", messages.WARNING)
            return HttpResponseRedirect(request.get_full_path())
        for job_id in ids:
            try:
                with audited(app, f"admin {verb}", job_id, actor=_actor(request)):
                    if verb == "retry":
                        control.retry_job(app, job_id)
                    else:
                        said = control.cancel_job(
                            app, job_id, terminate=verb == "terminate",
                            reason=f"cancelled in the admin by {request.user}",
                        )  # fmt: skip
                if verb == "retry":
                    self.message_user(request, f"{job_id} is queued again", messages.SUCCESS)
                else:
                    self.message_user(
                        request,
                        said.message,
                        messages.SUCCESS if said.took_effect else messages.WARNING,
                    )
            except ConveyorError as exc:
                self.message_user(request, f"{job_id}: {exc}", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: Any = None) -> HttpResponse:  # fmt: skip
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._act(request)
        app = get_app()
        try:
            job = control.describe_job(app, object_id)
        except ConveyorError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect("../../")
        shown = {k: json.dumps(job[k], indent=2, default=str) for k in
                 ("args", "kwargs", "result", "progress", "headers")}  # fmt: skip
        times = {k: _when(job[k]) for k in ("created_at", "run_at", "started_at", "finished_at")}
        ran = [w for w in [job["worker"], *(a.get("worker") for a in job["attempts"])] if w]
        labels = worker_labels(app, list(dict.fromkeys(ran)))
        attempts = [{"attempt": a.get("attempt"), "worker": labels.get(a.get("worker") or ""),
                     "started": _when(a.get("started_at")), "ended": _when(a.get("finished_at")),
                     "outcome": "lost" if a.get("lost") else a.get("state"), "error": a.get("error")}
                    for a in job["attempts"]]  # fmt: skip
        actions = [ACTION_BUTTONS[name] for name in job["actions"]]
        return TemplateResponse(request, "conveyor/admin/job.html", self._context(
            request, f"Job {object_id}", job=job, shown=shown, times=times, attempts=attempts,
            worker=labels.get(job["worker"] or ""), actions=actions,
            can_change=self.has_change_permission(request),
        ))  # fmt: skip


#: The admin's job actions (form value: the control verb, ``control.jobs.job_actions``).
JOB_ACTIONS = {"cancel_jobs": "cancel", "terminate_jobs": "terminate", "retry_jobs": "retry"}
#: A job page's button for each of ``job_actions``: its form value and label.
ACTION_BUTTONS = {verb: (value, verb.capitalize()) for value, verb in JOB_ACTIONS.items()}


#: What the args and kwargs fields take, with an example, for their error messages.
JSON_KINDS: dict[str, tuple[type, str]] = {
    "args": (list, 'a JSON list, e.g. [1, "a"]'),
    "kwargs": (dict, 'a JSON object, e.g. {"days": 7}'),
}


def _json_kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


#: The schedules list's actions (``ScheduleBook``'s method is the first word).
SCHEDULE_ACTIONS = ("pause_schedules", "resume_schedules", "delete_schedules")


def _actor(request: HttpRequest) -> str:
    """Who an admin change is audited as (``control.audit``): ``django:`` the user."""
    return f"django:{request.user}"


class ScheduleForm(forms.Form):
    name = forms.RegexField(regex=r"^[\w.:@-]{1,100}$", max_length=100)
    task = forms.CharField(
        max_length=200, help_text="The task's import path, e.g. reports.tasks.nightly"
    )
    cron = forms.CharField(required=False, help_text="A cron expression, e.g. 0 1 * * *")
    # Read as the dashboard and ``conveyor schedules --every`` read it; the schedule
    # itself checks the range.
    every = forms.CharField(
        required=False, max_length=30, help_text="Or an interval: 90 (seconds), 90s, 15m, 2h, 1d"
    )
    tz = forms.CharField(initial="UTC", max_length=64)
    args = forms.CharField(initial="[]", help_text="JSON list")
    kwargs = forms.CharField(initial="{}", help_text="JSON object")
    queue = forms.CharField(required=False, max_length=100)

    def clean_every(self) -> float | None:
        text = self.cleaned_data.get("every", "").strip()
        if not text:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        for key, (kind, expected) in JSON_KINDS.items():
            try:
                value = json.loads(data.get(key) or ("[]" if kind is list else "{}"))
            except json.JSONDecodeError as exc:
                self.add_error(key, f"not valid JSON at line {exc.lineno}, column {exc.colno} "
                                    f"({exc.msg}); give {expected}")  # fmt: skip
                continue
            if not isinstance(value, kind):
                self.add_error(key, f"give {expected}, not a JSON {_json_kind(value)}")
            data[key] = value
        if bool(data.get("cron")) == (data.get("every") is not None) and "every" not in self.errors:
            raise forms.ValidationError("Give a cron expression or an interval (one of them).")
        return data

    def fields_for_book(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"cron": data["cron"] or None, "every": data["every"], "tz": data["tz"],
                "args": data["args"], "kwargs": data["kwargs"],
                "options": {"queue": data["queue"]} if data["queue"] else {}}  # fmt: skip


@admin.register(Schedule)
class ScheduleAdmin(ConveyorAdmin):
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        book = get_app().schedules
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            action, names = request.POST.get("action"), request.POST.getlist("_selected_action")
            for name in names:
                try:
                    verb = (action or "").split("_")[0]
                    if action not in SCHEDULE_ACTIONS or (
                        verb == "delete" and not self.has_delete_permission(request)
                    ):
                        continue
                    with audited(get_app(), f"admin schedule {verb}", name, actor=_actor(request)):
                        getattr(book, verb)(name)
                    self.message_user(request, f"{name}: {verb}d", messages.SUCCESS)
                except ConveyorError as exc:
                    self.message_user(request, f"{name}: {exc}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        rows = [{"name": v.schedule.name, "task": v.schedule.task,
                 "when": v.schedule.cron or f"every {v.schedule.every:g} s", "tz": v.schedule.tz,
                 "paused": getattr(v.schedule, "paused", False), "source": v.schedule.source,
                 "next": _when(v.next_run), "last": _when(v.last_run_at)}
                for v in sorted(book.list(), key=lambda v: v.schedule.name)]  # fmt: skip
        return TemplateResponse(request, "conveyor/admin/schedules.html", self._context(
            request, "Schedules", schedules=rows, can_change=self.has_change_permission(request),
        ))  # fmt: skip

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return self._edit(request, None)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: Any = None) -> HttpResponse:  # fmt: skip
        return self._edit(request, object_id)

    def _edit(self, request: HttpRequest, name: str | None) -> HttpResponse:
        if not (
            self.has_add_permission(request)
            if name is None
            else self.has_change_permission(request)
        ):
            raise PermissionDenied
        book = get_app().schedules
        if request.method == "POST":
            form = ScheduleForm(request.POST)
            if form.is_valid():
                verb, target = (
                    ("add", form.cleaned_data["name"]) if name is None else ("edit", name)
                )
                try:
                    with audited(get_app(), f"admin schedule {verb}", target, actor=_actor(request),
                                 task=form.cleaned_data["task"]):  # fmt: skip
                        if name is None:
                            book.add(target, form.cleaned_data["task"], **form.fields_for_book())
                        else:
                            book.update(
                                name, task=form.cleaned_data["task"], **form.fields_for_book()
                            )
                except UnknownTask as exc:
                    form.add_error("task", str(exc))
                except (ConveyorError, TypeError, ValueError) as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request, f"schedule {form.cleaned_data['name']} saved", messages.SUCCESS
                    )
                    return HttpResponseRedirect("../../" if name else "../")
        elif name is None:
            form = ScheduleForm()
        else:
            try:
                schedule = book.get(name).schedule
            except ConveyorError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect("../../")
            form = ScheduleForm(initial={
                "name": schedule.name, "task": schedule.task, "cron": schedule.cron or "",
                "every": seconds_text(schedule.every), "tz": schedule.tz, "args": json.dumps(schedule.args),
                "kwargs": json.dumps(schedule.kwargs), "queue": (schedule.options or {}).get("queue", ""),
            })  # fmt: skip
        return TemplateResponse(request, "conveyor/admin/schedule_form.html", self._context(
            request, "Add schedule" if name is None else f"Schedule {name}", form=form, editing=name,
        ))  # fmt: skip
