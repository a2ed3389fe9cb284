"""Tasks written against Django's task API, with Conveyor's options where useful."""

import asyncio
import os

from conveyor.contrib.django.compat import TASKS_MODULE
from conveyor.contrib.django.task import task as conveyor_task

if TASKS_MODULE == "django.tasks":
    from django.tasks import task
else:
    from django_tasks import task

from .models import Order


class ShopError(Exception):
    pass


@task
def add(a, b):
    return a + b


@task(max_retries=0)
def boom(x):
    raise ShopError(f"cannot ship {x}")


@task
async def aping(x):
    await asyncio.sleep(0.01)
    return f"pong {x}"


@task(takes_context=True)
def whoami(context, tag):
    context.update_progress(50, "halfway", tag=tag)
    return {"id": context.task_result.id, "attempt": context.attempt, "tag": tag}


@task
def record(tag):
    """Appends ``tag`` to $RUN_LOG: the order jobs ran in."""
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write(tag + "\n")
    return tag


@task
def count_orders():
    return Order.objects.count()


@task(queue_name="idle")
def never_run(x):
    return x


@conveyor_task(max_retries=2, time_limit=30, queue_name="idle")
def tidy(x):
    """Conveyor's options through conveyor.contrib.django.task.task: on Django 6.0 too."""
    return x
