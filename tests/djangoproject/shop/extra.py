"""A task outside tasks.py: the worker imports it by its path when its first job comes."""

from conveyor.contrib.django.compat import TASKS_MODULE

if TASKS_MODULE == "django.tasks":
    from django.tasks import task
else:
    from django_tasks import task


@task
def shout(word):
    return word.upper()
