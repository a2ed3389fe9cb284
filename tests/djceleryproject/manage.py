#!/usr/bin/env python
"""A Django project moved from Celery (docs/migrating-from-celery.md), as ``django-admin startproject`` writes one."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
