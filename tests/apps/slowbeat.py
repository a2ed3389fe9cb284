"""An app whose workers heartbeat only every 10 s, so a revoke they obey sooner came by
the revocation watch's push, not by a heartbeat (``tests/worker/test_revoke_push.py``)."""

from __future__ import annotations

import os
import time

from conveyor import App

app = App("slowbeat", heartbeat_interval=10.0, lease_seconds=60.0, rescue_interval=60.0)


@app.task(name="s.sleep")
def sleep(path: str, seconds: float) -> None:
    """Write this process's id to ``path``, then sleep."""
    with open(path, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(seconds)
