"""Writes every task signal it receives to ``$SIGNAL_LOG``: the tests read what each
process (producer, worker children) sent."""

import os

from django.apps import AppConfig


def _log(name):
    def receiver(sender, task_result, **kwargs):
        path = os.environ.get("SIGNAL_LOG")
        if path:
            with open(path, "a") as log:
                log.write(f"{name} {task_result.id} {task_result.status} {os.getpid()}\n")

    return receiver


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from conveyor.contrib.django.compat import task_enqueued, task_finished, task_started

        for signal, name in ((task_enqueued, "enqueued"), (task_started, "started"),
                             (task_finished, "finished")):  # fmt: skip
            signal.connect(_log(name), weak=False)
