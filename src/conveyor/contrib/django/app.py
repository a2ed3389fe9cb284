"""The app every ``manage.py conveyor`` process and worker child loads
(``-A conveyor.contrib.django.app:app``): importing it sets Django up first, as a process
started by spawn or a fork server must (``DJANGO_SETTINGS_MODULE`` comes from the
environment, which ``manage.py`` sets and children inherit), then leaves printing
Django's log lines to Conveyor's handler (see ``logs``)."""

from __future__ import annotations

import os

import django
from django.apps import apps

from conveyor.errors import ConfigurationError

from .logs import print_once
from .runtime import get_app

if not apps.ready:
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError(
            "DJANGO_SETTINGS_MODULE is not set: run through manage.py conveyor, "
            "or export DJANGO_SETTINGS_MODULE=mysite.settings"
        )
    django.setup()

print_once()  # Django's console handler and Conveyor's print no line twice
app = get_app()
