"""Celery's state names (``celery.states``); they are Conveyor's too."""

from __future__ import annotations

from ..states import State

PENDING, STARTED, RETRY = State.PENDING.value, State.STARTED.value, State.RETRY.value
SUCCESS, FAILURE, REVOKED = State.SUCCESS.value, State.FAILURE.value, State.REVOKED.value
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, STARTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
ALL_STATES = READY_STATES | UNREADY_STATES
