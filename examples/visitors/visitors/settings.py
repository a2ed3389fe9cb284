"""A visitor-registration site: a guest registers at the desk, and the face terminal and
the door controller (Hikvision devices, faked in visits/hikvision.py) are set up by
Conveyor, on the queue "hikvision", after the registration is committed."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "visitors-example-only")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "visitors.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "conveyor.contrib.django",  # tasks.py discovery, checks, admin, manage.py conveyor
    "visits",
]
try:  # Django 6 has the task API built in; on 4.2/5.2 the django-tasks backport is an app
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
STATIC_URL = "static/"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("VISITORS_DB", BASE_DIR / "visitors.sqlite3"),
    }
}

# Django's task API, on Conveyor
TASKS = {
    "default": {
        "BACKEND": "conveyor.contrib.django.ConveyorBackend",
        "QUEUES": ["default", "hikvision"],
    }
}
CONVEYOR = {
    "BACKEND": os.environ.get("CONVEYOR_BACKEND", f"sqlite:///{BASE_DIR / 'conveyor.db'}"),
    # which worker groups consume which queues: `manage.py check` warns about a queue
    # no group consumes
    "WORKERS": {"web": ["default"], "devices": ["hikvision"]},
}
