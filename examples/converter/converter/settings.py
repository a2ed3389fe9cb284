"""The converter's settings. Each time can be changed through the environment (tests and
staging shorten them this way), never by editing the tasks."""

from __future__ import annotations

import os
from pathlib import Path


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


#: Where uploads are read and conversions written (``out/``); partial files end ``.part``.
MEDIA_ROOT = Path(os.environ.get("CONVERTER_MEDIA_ROOT", "media"))
#: A source that is not there yet (an upload still arriving) is tried again 3 times,
#: this long apart.
MAX_RETRIES = 3
RETRY_DELAY = _seconds("CONVERTER_RETRY_DELAY", 60)
#: A conversion is warned (and cleans up) after the soft limit, killed at the hard one.
SOFT_TIME_LIMIT = _seconds("CONVERTER_SOFT_TIME_LIMIT", 600)
TIME_LIMIT = _seconds("CONVERTER_TIME_LIMIT", 900)
#: How often leftover partial files are removed, and how long one must have been left
#: untouched to go (a running conversion writes to its own every chunk, and none runs
#: past the hard limit).
CLEANUP_EVERY = _seconds("CONVERTER_CLEANUP_EVERY", 6 * 3600)
PARTIAL_MAX_AGE = _seconds("CONVERTER_PARTIAL_MAX_AGE", TIME_LIMIT)
#: When finished job records are purged (cron, UTC): daily at 03:00.
PURGE_CRON = os.environ.get("CONVERTER_PURGE_CRON", "0 3 * * *")
#: The priority of urgent conversions (0-9, higher first).
URGENT_PRIORITY = 9
#: A process-pool child is replaced after this many jobs (leaky codecs stay bounded).
MAX_TASKS_PER_CHILD = int(os.environ.get("CONVERTER_MAX_TASKS_PER_CHILD", 1000))
#: The pace of the stand-in conversion: a pause per 64 KiB chunk (0 in production code
#: would be the real encoder's own pace).
CHUNK_PAUSE = _seconds("CONVERTER_CHUNK_PAUSE", 0.01)
