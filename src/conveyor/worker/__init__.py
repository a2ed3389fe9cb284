"""The worker package: the main loop, pools, job execution, time limits."""

from .worker import Worker

__all__ = ["Worker"]
