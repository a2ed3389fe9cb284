"""A fake Hikvision device: each call answers after a short pause, and the first
``$HIKVISION_FAILURES`` attempts of every call fail (default 1), as a terminal that is
busy or rebooting does."""

import os
import time


class DeviceError(Exception):
    """The device did not answer."""


def call(action: str, visit_id: int, attempt: int) -> dict[str, object]:
    time.sleep(0.05)
    if attempt <= int(os.environ.get("HIKVISION_FAILURES", "1")):
        raise DeviceError(f"{action} for visit {visit_id}: device busy (attempt {attempt})")
    return {"action": action, "visit": visit_id, "ok": True}
