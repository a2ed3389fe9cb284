"""video2doc's jobs: five task types, each on its own queue, so each gets the workers it
needs (GPU machines for video and image, CPU for the rest). The work is simulated: each
step returns what a real one would hand to the next."""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor import App

app = App(
    "video2doc",
    backend=os.environ.get("CONVEYOR_BACKEND", "sqlite:///video2doc.db"),
    http_tasks=["video2doc.*"],  # what HTTP clients may submit; nothing else is exposed
)
#: Seconds each simulated step takes.
STEP = float(os.environ.get("VIDEO2DOC_STEP", "0.05"))


@app.task(name="video2doc.video.extract", queue="video")
def extract(video_url: str) -> dict[str, Any]:
    """Split the video into an audio track and key frames."""
    time.sleep(STEP)
    stem = video_url.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return {
        "video": video_url,
        "audio": f"{stem}.wav",
        "frames": [f"{stem}-{i}.jpg" for i in range(3)],
    }


@app.task(name="video2doc.audio.transcribe", queue="audio")
def transcribe(media: dict[str, Any]) -> str:
    time.sleep(STEP)
    return f"transcript of {media['audio']}"


@app.task(name="video2doc.image.describe", queue="image")
def describe(media: dict[str, Any]) -> str:
    time.sleep(STEP)
    return "; ".join(f"caption of {frame}" for frame in media["frames"])


@app.task(name="video2doc.summary.write", queue="summary")
def summarize(parts: str | list[str]) -> str:
    """One part (the transcript) after a chain; every part, in order, after a chord."""
    time.sleep(STEP)
    texts = [parts] if isinstance(parts, str) else parts
    return " | ".join(f"summary of {text}" for text in texts)


@app.task(name="video2doc.export.render", queue="export")
def export(summary: str, fmt: str = "md") -> dict[str, str]:
    time.sleep(STEP)
    return {"format": fmt, "document": f"# Document\n\n{summary}\n"}
