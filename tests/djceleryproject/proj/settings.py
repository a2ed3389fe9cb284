"""The worked example of docs/migrating-from-celery.md after its steps: Celery's settings
(with ``from conveyor.celery.schedules import crontab``), and ``conveyor.contrib.django``
installed for the admin. The stores come from the environment, so each test has its own:
``CELERY_BROKER_URL`` (Redis), ``PROJ_DB`` (Django's SQLite file) or ``PROJ_DATABASES``
(Django's ``DATABASES`` as JSON)."""

import json
import os

from conveyor.celery.schedules import crontab

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "proj.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "conveyor.contrib.django",
    "cameras",
    "reports",
]
if os.environ.get("PROJ_CELERY_ONLY"):  # a project whose tasks are all Celery-style
    INSTALLED_APPS.remove("reports")  # (its tasks.py has a Django @task too)
try:  # Django 6 has the task API built in; before, the backport is an app
    import django.tasks  # noqa: F401
except ImportError:
    INSTALLED_APPS.insert(0, "django_tasks")
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
if os.environ.get("PROJ_DATABASES"):  # a test's own databases (PostgreSQL), as JSON
    DATABASES = json.loads(os.environ["PROJ_DATABASES"])
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PROJ_DB"]}}
TASKS = {"default": {"BACKEND": "conveyor.contrib.django.ConveyorBackend"}}
if os.environ.get("PROJ_CONVEYOR"):  # the tests' variants: a second store, the app named
    CONVEYOR = json.loads(os.environ["PROJ_CONVEYOR"])

CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND")
CELERY_TASK_ROUTES = {"cameras.tasks.*": {"queue": "hikvision"}}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Europe/Berlin"
CELERY_BEAT_SCHEDULE = {
    "nightly-report": {"task": "reports.tasks.nightly", "schedule": crontab(hour=1, minute=0)},
}
# the tests' variants: more CELERY_ settings, {"WORKER_SEND_TASK_EVENTS": true, ...}
globals().update(
    {f"CELERY_{k}": v for k, v in json.loads(os.environ.get("PROJ_CELERY", "{}")).items()}
)
