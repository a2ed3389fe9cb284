from conveyor.celery import shared_task

try:  # a Django task beside the Celery-style ones (Django 6; the backport before)
    from django.tasks import task
except ImportError:
    from django_tasks import task


@shared_task
def nightly():
    return "report"


@task()
def count(n):
    return n * 2
