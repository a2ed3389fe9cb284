"""The converter's app and tasks.

One queue per kind of file (video, audio, image, document, archive) and one for the
housekeeping (cleanup), so a burst of videos never holds up thumbnails. ``conveyor -A
converter.tasks:app up`` starts a worker group for each line of ``worker_groups``.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

from conveyor import App, SoftTimeLimitExceeded
from conveyor.context import TaskContext

from . import settings

app = App(
    "converter",
    # video one at a time (it takes the CPU), the light kinds four at a time.
    worker_groups=["video:1", "audio,image,document:4", "archive,cleanup:1"],
    worker_max_tasks_per_child=settings.MAX_TASKS_PER_CHILD,
    http_tasks=["converter.*"],
)

CHUNK = 64 * 1024
#: What every conversion task shares: retries of a missing source, and time limits.
CONVERSION = {"bind": True, "max_retries": settings.MAX_RETRIES,
              "soft_time_limit": settings.SOFT_TIME_LIMIT, "time_limit": settings.TIME_LIMIT}  # fmt: skip


def convert_file(ctx: TaskContext, source: str, fmt: str) -> str:
    """Stand-in for an encoder: copy ``source`` to ``out/<name>.<fmt>`` chunk by chunk,
    reporting progress in percent. Written to a ``.part`` file, renamed when complete."""
    src = Path(source)
    if not src.exists():  # the upload has not arrived yet: try again later
        ctx.retry(countdown=settings.RETRY_DELAY, exc=FileNotFoundError(f"no such upload: {src}"))
    out = settings.MEDIA_ROOT / "out" / f"{src.stem}.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    size, done = src.stat().st_size or 1, 0
    try:
        with src.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
                done += len(chunk)
                ctx.update_progress(round(100 * done / size, 1), message=f"{done} of {size} bytes")
                time.sleep(settings.CHUNK_PAUSE)
    except SoftTimeLimitExceeded:
        partial.unlink(missing_ok=True)  # the hard limit would leave it for the cleanup
        raise
    partial.replace(out)
    return str(out)


@app.task(name="converter.video", queue="video", **CONVERSION)
def convert_video(self: TaskContext, source: str, fmt: str = "webm") -> str:
    return convert_file(self, source, fmt)


@app.task(name="converter.audio", queue="audio", **CONVERSION)
def convert_audio(self: TaskContext, source: str, fmt: str = "ogg") -> str:
    return convert_file(self, source, fmt)


@app.task(name="converter.image", queue="image", **CONVERSION)
def convert_image(self: TaskContext, source: str, fmt: str = "webp") -> str:
    return convert_file(self, source, fmt)


@app.task(name="converter.document", queue="document", **CONVERSION)
def convert_document(self: TaskContext, source: str, fmt: str = "pdf") -> str:
    return convert_file(self, source, fmt)


@app.task(name="converter.archive", queue="archive", **CONVERSION)
def archive(self: TaskContext, sources: list[str], name: str) -> str:
    """Zip several files, with progress per file."""
    target = settings.MEDIA_ROOT / "out" / f"{name}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as zipped:
        for n, source in enumerate(sources, 1):
            zipped.write(source, Path(source).name)
            self.update_progress(100 * n / len(sources), message=f"{n}/{len(sources)} files")
    return str(target)


@app.periodic(every=settings.CLEANUP_EVERY, schedule_name="cleanup", queue="cleanup")
def cleanup() -> int:
    """Remove partial files older than PARTIAL_MAX_AGE (left by killed or cancelled jobs)."""
    now, removed = time.time(), 0
    for partial in (settings.MEDIA_ROOT / "out").glob("*.part"):
        if now - partial.stat().st_mtime > settings.PARTIAL_MAX_AGE:
            partial.unlink(missing_ok=True)
            removed += 1
    return removed


@app.periodic(cron=settings.PURGE_CRON, schedule_name="purge-records", queue="cleanup", bind=True)
def purge_records(self: TaskContext) -> int:
    """Delete finished job records older than the app's result_ttl (7 days by default)."""
    return self.app.backend.prune()


def submit(source: str, fmt: str, *, urgent: bool = False) -> str:
    """Queue the conversion of ``source`` on the queue of its kind; returns the job id."""
    task = {".mp4": convert_video, ".mov": convert_video, ".mp3": convert_audio,
            ".wav": convert_audio, ".png": convert_image, ".jpg": convert_image}.get(
        Path(source).suffix.lower(), convert_document)  # fmt: skip
    priority = settings.URGENT_PRIORITY if urgent else None
    return task.apply_async((source, fmt), priority=priority).id
