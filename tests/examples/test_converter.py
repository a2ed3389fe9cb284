"""examples/converter under one ``conveyor up``: the worker groups of its configuration,
work submitted through the API running in the right group, a retry, a cancel of a
running conversion, the cleanup schedule firing, a killed child started again, and a
SIGTERM after which every job is finished or back in its queue. Times are shortened
through the example's settings (environment variables), not by editing it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conveyor import App
from conveyor.control import list_jobs

from .conftest import Up, poll

pytestmark = pytest.mark.slow
CHUNK = 64 * 1024


def upload(path: Path, chunks: int) -> str:
    path.write_bytes(bytes(range(256)) * (CHUNK // 256) * chunks)
    return str(path)


def test_converter_under_up(run_up: Callable[..., Up], example_url: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    env = {"CONVEYOR_BACKEND": example_url, "CONVERTER_MEDIA_ROOT": str(media),
           "CONVERTER_RETRY_DELAY": "1", "CONVERTER_CLEANUP_EVERY": "1",
           "CONVERTER_PARTIAL_MAX_AGE": "10", "CONVERTER_CHUNK_PAUSE": "0.05"}  # fmt: skip
    (media / "out").mkdir(parents=True)
    up = run_up("converter", "converter.tasks:app", env=env)
    banner = up.log()
    assert "queues video  (process x 1)" in banner
    assert "queues audio, image, document  (process x 4)" in banner
    assert "schedules: cleanup, purge-records" in banner
    assert "not consumed" not in banner
    workers = poll(lambda: len(w := up.workers()) == 3 and w, 30, "the three worker groups")
    assert set(workers) == {"video", "audio,image,document", "archive,cleanup"}

    # Work sent through the API runs in the group that consumes its queue.
    video = up.submit("converter.video", upload(media / "talk.mp4", 20))
    image = up.submit("converter.image", upload(media / "cover.png", 1), "webp", priority=9)
    done = up.wait(video, "SUCCESS")
    assert up.ran_in(done) == "video"
    assert done["progress"]["percent"] == 100
    assert Path(done["result"]).read_bytes() == (media / "talk.mp4").read_bytes()
    assert up.ran_in(up.wait(image, "SUCCESS")) == "audio,image,document"

    # An upload that arrives late: retried 1 s apart (60 s in production) until it is there.
    late = up.submit("converter.audio", str(media / "late.mp3"))
    up.wait(late, "SCHEDULED", "RETRY")
    upload(media / "late.mp3", 1)
    retried = up.wait(late, "SUCCESS")
    assert retried["attempts"][0]["error"]["type"] == "FileNotFoundError"

    # The cleanup schedule fires (every 1 s here, 6 h in production) and removes stale partials.
    stale = media / "out" / "old.webm.part"
    stale.write_bytes(b"left by a killed conversion")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    poll(lambda: not stale.exists(), 15, "the cleanup schedule to remove a stale partial file")

    # A running conversion cancelled: its process is stopped, the job ends REVOKED; of the
    # two queued behind it on the one-at-a-time video group, the urgent one runs first.
    long = up.submit("converter.video", upload(media / "long.mov", 400))
    poll(lambda: (up.job(long)["progress"] or {}).get("percent"), 20, "the conversion's progress")
    normal = up.submit("converter.video", str(media / "talk.mp4"))
    urgent = up.submit("converter.video", str(media / "talk.mp4"), priority=9)
    assert up.api.post(f"/api/jobs/{long}/cancel", json={"terminate": True}).status_code == 200
    assert up.wait(long, "REVOKED")["finished_at"]
    assert up.wait(urgent, "SUCCESS")["started_at"] < up.wait(normal, "SUCCESS")["started_at"]

    # A child killed outright is started again, and says why.
    victim = workers["video"]["pid"]
    psutil.Process(victim).kill()
    poll(lambda: "killed by SIGKILL; restarting" in up.log(), 20, "the restart to be logged")
    poll(lambda: any(w["queues"] == ["video"] and w["pid"] != victim for w in up.workers().values()),
         30, "a new video worker")  # fmt: skip

    # SIGTERM: the running conversion finishes, the one queued behind it stays queued.
    running = up.submit("converter.video", str(media / "talk.mp4"))
    queued = up.submit("converter.video", str(media / "talk.mp4"))
    up.wait(running, "STARTED")
    children = up.children()
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(60) == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    app = App("check", backend=example_url)
    states = {i: r.state.value for i, r in app.backend.get_many([running, queued]).items()}
    assert states == {running: "SUCCESS", queued: "PENDING"}
    assert list_jobs(app, states=["STARTED"]).jobs == []
    app.backend.close()
