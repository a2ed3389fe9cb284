from django.db import models


class Visit(models.Model):
    guest = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    #: The Conveyor workflow that sets up the devices: its jobs are the status (no task table).
    workflow_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return self.guest
