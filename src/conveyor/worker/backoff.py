"""Retry delays: exponential backoff with a cap and jitter."""

from __future__ import annotations

import random

#: Base delay for ``retry_backoff=True``.
DEFAULT_BACKOFF_BASE = 1.0


def retry_delay(retries: int, backoff: bool | float, cap: float, jitter: bool) -> float:
    """Delay before retry number ``retries + 1``: base * 2**retries, at most ``cap``.

    With jitter the delay is drawn from [delay/2, delay] ("equal jitter"): retries of
    many jobs that failed together spread out, but none comes back at once.
    """
    if backoff is False:
        return 0.0
    base = DEFAULT_BACKOFF_BASE if backoff is True else float(backoff)
    delay = min(cap, base * (2 ** min(retries, 32)))
    return float(delay / 2 + random.uniform(0, delay / 2)) if jitter else float(delay)
