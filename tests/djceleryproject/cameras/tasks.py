from conveyor.celery import shared_task


def fetch(camera_id):
    return f"jpeg of {camera_id}"


@shared_task(bind=True, max_retries=3, soft_time_limit=300)
def snapshot(self, camera_id):
    try:
        return fetch(camera_id)
    except ConnectionError as exc:
        raise self.retry(countdown=60, exc=exc) from exc
