"""A small real project for the Django integration's tests. Its stores come from the
environment, so each test run has its own: ``CONVEYOR_BACKEND`` (Conveyor's URL) and
``SHOP_DB`` (``sqlite:<path>``, or ``postgresql:<schema>`` in the test PostgreSQL)."""

import os

SECRET_KEY = "tests-only"
DEBUG = os.environ.get("SHOP_DEBUG") == "1"  # Django then logs its tasks to the console
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "djsite.urls"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # the admin's own CSS, as a real project serves it
    "conveyor.contrib.django",
    "shop",
]
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

_db = os.environ.get("SHOP_DB", "sqlite:shop.sqlite3")
if _db.startswith("postgresql:"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "test",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "OPTIONS": {"options": f"-c search_path={_db.split(':', 1)[1]}"},
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db.split(":", 1)[1]}}

TASKS = {
    "default": {
        "BACKEND": "conveyor.contrib.django.ConveyorBackend",
        "QUEUES": ["default", "idle"],
    }
}
CONVEYOR = {
    "BACKEND": os.environ["CONVEYOR_BACKEND"],
    "WORKERS": {"main": ["default"]},
}
if os.environ.get("SHOP_CONVEYOR_DATABASE"):  # the Django database the jobs are said to share
    CONVEYOR["DATABASE"] = os.environ["SHOP_CONVEYOR_DATABASE"]
if _db.startswith("postgresql:"):  # the same database under a second alias
    DATABASES["jobs"] = dict(DATABASES["default"])
