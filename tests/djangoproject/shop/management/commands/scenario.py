"""``manage.py scenario enqueue`` / ``scenario check IDS_JSON`` / ``scenario admin`` /
``scenario schedule_form``: the producer's and the operator's side of
tests/test_django.py, printed as JSON."""

import json
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import Client
from django.utils import timezone

from conveyor import chain
from conveyor.contrib.django import enqueue_on_commit, get_app
from conveyor.contrib.django.compat import TaskResultDoesNotExist
from shop import extra, tasks
from shop.models import Order


class Rollback(Exception):
    pass


def enqueue():
    ids = {
        "add": tasks.add.enqueue(2, 3).id,
        "boom": tasks.boom.enqueue("parcel").id,
        "aping": tasks.aping.enqueue(7).id,
        "whoami": tasks.whoami.enqueue(tag="ctx").id,
        "count": tasks.count_orders.enqueue().id,
        "idle": tasks.never_run.enqueue(1).id,
        "extra": extra.shout.enqueue("hi").id,
    }
    run_after = timezone.now() + timedelta(seconds=2)
    ids["deferred"] = tasks.add.using(run_after=run_after).enqueue(1, 1).id
    ids["run_after"] = run_after.timestamp()
    ids["low"] = tasks.record.using(priority=-100).enqueue("low").id
    ids["mid"] = tasks.record.enqueue("mid").id
    ids["high"] = tasks.record.using(priority=100).enqueue("high").id
    # a rolled-back transaction: enqueue_on_commit leaves no job on any store; a plain
    # enqueue leaves none when the jobs are in the same PostgreSQL database
    try:
        with transaction.atomic():
            Order.objects.create(item="lost")
            enqueue_on_commit(tasks.add, 100, 1)
            ids["rolled_back"] = tasks.add.enqueue(100, 2).id
            # the app's own ways of storing a job join it too (send_task is what
            # delay() and apply_async() of a Conveyor or conveyor.celery task call)
            get_app().send_task("shop.tasks.add", (100, 3))
            tasks.add.s(100, 4).apply_async()
            chain(tasks.add.s(100, 5), tasks.add.s(1)).apply_async()
            raise Rollback
    except Rollback:
        pass
    with transaction.atomic():
        Order.objects.create(item="kept")
        ids["committed"] = tasks.add.enqueue(200, 2).id
        enqueue_on_commit(tasks.add, 200, 1)
        get_app().send_task("shop.tasks.add", (200, 3))
    ids["orders"] = Order.objects.count()
    return ids


def check(ids):
    found = {}
    for name in ("add", "boom", "aping", "whoami", "count", "idle", "deferred", "low", "mid",
                 "high", "rolled_back", "committed", "extra"):  # fmt: skip
        try:
            result = tasks.add.get_backend().get_result(ids[name])
        except TaskResultDoesNotExist:
            found[name] = None
            continue
        entry = {"status": str(result.status), "worker_ids": result.worker_ids,
                 "attempts": result.attempts, "task": result.task.module_path,
                 "errors": [[e.exception_class_path, e.traceback] for e in result.errors],
                 "enqueued_at": result.enqueued_at and result.enqueued_at.timestamp(),
                 "started_at": result.started_at and result.started_at.timestamp(),
                 "finished_at": result.finished_at and result.finished_at.timestamp()}  # fmt: skip
        if result.is_finished and not result.errors:
            entry["return_value"] = result.return_value
        found[name] = entry
    progress = get_app().backend.get(ids["whoami"]).progress or {}
    found["whoami_progress"] = [progress.get("percent"), progress.get("message")]
    found["tidy"] = [type(tasks.tidy).__name__, tasks.tidy.max_retries, tasks.tidy.time_limit]
    result = tasks.add.get_result(ids["add"])
    result.refresh()
    found["refreshed"] = str(result.status)
    adds = [j.payload.decode() for j in get_app().backend.list_jobs() if j.task == "shop.tasks.add"]
    found["add_payloads"] = adds
    missing = []
    for bad in ("01a23039-0000-7000-8000-000000000000", "not an id", ""):
        try:
            tasks.add.get_backend().get_result(bad)
        except TaskResultDoesNotExist:
            missing.append(bad)
    found["missing"] = missing
    return found


def admin(ids):
    User.objects.filter(username="ops").delete()
    user = User.objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client()
    client.force_login(user)
    pages = {}
    for name, url in (("jobs", "/admin/conveyor/job/"), ("failed", "/admin/conveyor/job/?state=FAILURE"),
                      ("search", f"/admin/conveyor/job/?q={ids['idle']}"),
                      ("job", f"/admin/conveyor/job/{ids['boom']}/change/"),
                      ("schedules", "/admin/conveyor/schedule/"), ("index", "/admin/"),
        ("bad_state", "/admin/conveyor/job/?state=BOGUS"), ("no_job", "/admin/conveyor/job/nope/change/"),
    ):  # fmt: skip
        response = client.get(url)
        pages[name] = {"status": response.status_code, "body": response.content.decode()}
    response = client.post(
        "/admin/conveyor/job/", {"action": "cancel_jobs", "_selected_action": [ids["idle"]]}
    )
    pages["cancel"] = {"status": response.status_code}
    pages["idle_state"] = get_app().backend.get(ids["idle"]).state.value
    response = client.post(
        "/admin/conveyor/job/", {"action": "retry_jobs", "_selected_action": [ids["boom"]]}
    )
    pages["retry"] = {"status": response.status_code}
    pages["boom_state"] = get_app().backend.get(ids["boom"]).state.value
    response = client.post("/admin/conveyor/schedule/add/", {
        "name": "nightly-count", "task": "shop.tasks.count_orders", "cron": "0 1 * * *",
        "every": "", "tz": "UTC", "args": "[]", "kwargs": "{}", "queue": ""})  # fmt: skip
    pages["schedule_add"] = {
        "status": response.status_code,
        "body": response.content.decode()[-3000:],
    }
    pages["schedules_after"] = sorted(v.schedule.name for v in get_app().schedules.list())
    response = client.post("/admin/conveyor/schedule/",
                           {"action": "pause_schedules", "_selected_action": ["nightly-count"]})  # fmt: skip
    pages["audit"] = [[e.actor, e.action, e.target, e.outcome]
                      for e in reversed(get_app().backend.audit())]  # fmt: skip
    return pages


def schedule_form():
    """The admin's Add schedule form given a typo'd task, an interval as the dashboard
    takes it (15m), and arguments that are not JSON: each page's text, and what was stored."""
    User.objects.filter(username="ops").delete()
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    form = {"name": "quarterly", "task": "shop.tasks.count_orders", "cron": "", "every": "15m",
            "tz": "UTC", "args": "[]", "kwargs": "{}", "queue": ""}  # fmt: skip
    on_cron = {"cron": "0 1 * * *", "every": ""}
    cases = [
        ("typo", {**on_cron, "task": "shop.tasks.count_ordrs"}),
        ("bad_args", {**on_cron, "args": '[1,\n "a"'}),
        ("every", {}),
    ]
    pages = {}
    for name, changes in cases:
        response = client.post("/admin/conveyor/schedule/add/", {**form, **changes})
        pages[name] = {"status": response.status_code, "body": response.content.decode()}
    response = client.get("/admin/conveyor/schedule/quarterly/change/")
    pages["edit"] = {"status": response.status_code, "body": response.content.decode()}
    pages["stored"] = {v.schedule.name: v.schedule.every for v in get_app().schedules.list()}
    return pages


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("step", choices=["enqueue", "check", "admin", "schedule_form"])
        parser.add_argument("ids", nargs="?")

    def handle(self, step, ids=None, **options):
        ids = json.loads(ids) if ids else {}
        steps = {"enqueue": enqueue, "check": check, "admin": admin, "schedule_form": schedule_form}
        out = steps[step]
        self.stdout.write(json.dumps(out(ids) if ids else out()))
