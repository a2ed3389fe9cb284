"""The device calls, as Django tasks run by Conveyor on the queue "hikvision". Conveyor's
options ride on Django's decorator: a DeviceError is retried up to 3 times, after 0.2 s,
0.4 s, 0.8 s."""

from conveyor.contrib.django.compat import TASKS_MODULE

from . import hikvision

if TASKS_MODULE == "django.tasks":
    from django.tasks import task
else:
    from django_tasks import task

DEVICE = {"queue_name": "hikvision", "takes_context": True, "max_retries": 3,
          "autoretry_for": (hikvision.DeviceError,), "retry_backoff": 0.2, "retry_jitter": False}  # fmt: skip


@task(**DEVICE)
def enroll_face(context, visit_id):
    """Upload the guest's photo to the face terminal."""
    return hikvision.call("enroll_face", visit_id, context.attempt)


@task(**DEVICE)
def assign_access(context, visit_id):
    """Give the enrolled face access through the door for the visit."""
    return hikvision.call("assign_access", visit_id, context.attempt)
