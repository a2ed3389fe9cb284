"""What a process-pool child and its worker say to each other over their pipe: one
frozen dataclass per kind of message, dispatched by type (``match``), so mypy checks
every field on both sides.

Each pickles as a call of its class with its fields (``Message.__reduce__``), as
cheaply as the tuples they replaced: a dataclass's own pickling sets each field through
``object.__setattr__``, several microseconds more per message, on the pool's hot path
(docs/benchmarks.md).

Held jobs are numbered in claim order (see ``pools/child.py``): ``Claimed.first`` is the
number of the batch's first job, in the shared lease table and here alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...records import JobRecord, Lease, Outcome


class Message:
    """Base of every message: pickled as ``type(self)(*fields)``."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type[Message], tuple[Any, ...]]:
        names: tuple[str, ...] = self.__slots__  # a slotted dataclass's: its fields
        return type(self), tuple([getattr(self, name) for name in names])


# -- from a child to its worker --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready(Message):
    """The child loaded the app and is about to claim."""

    pid: int


@dataclass(frozen=True, slots=True)
class Claimed(Message):
    """The records of a claimed batch, numbered from ``first``: the worker renews their
    leases and, if the child dies, settles them."""

    first: int
    records: list[JobRecord]


@dataclass(frozen=True, slots=True)
class Acked(Message):
    """Outcomes the child stored (results trimmed to a preview for the worker's log), and
    the ids the backend refused because their lease was lost."""

    outcomes: list[Outcome]
    refused: list[str]


@dataclass(frozen=True, slots=True)
class Released(Message):
    """Jobs the child gave back to their queue without running them."""

    leases: list[Lease]


@dataclass(frozen=True, slots=True)
class Timed(Message):
    """A job with a hard time limit started: the worker kills the child at the limit."""

    job_id: str
    limit: float


@dataclass(frozen=True, slots=True)
class KillMe(Message):
    """The child stored what it finished; the job it runs was terminated: kill it."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Bye(Message):
    """The child is about to exit: ``why`` is "retire", "drained" or "stopped"."""

    why: str


@dataclass(frozen=True, slots=True)
class Fatal(Message):
    """The child cannot run jobs at all (the app does not load): the pool stops."""

    message: str


@dataclass(frozen=True, slots=True)
class Bundle(Message):
    """Several messages in one write, taken in order: a batch's records with the outcomes
    stored after them, so the worker wakes once for both."""

    messages: tuple[Claimed | Acked, ...]


FromChild = Ready | Claimed | Acked | Released | Timed | KillMe | Bye | Fatal | Bundle

# -- from the worker to a child --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stop(Message):
    """Finish the running job, release the rest, exit."""


@dataclass(frozen=True, slots=True)
class Terminate(Message):
    """Skip this job if it has not started; if it runs, store what is finished, then ask
    to be killed (``KillMe``)."""

    job_id: str


ToChild = Stop | Terminate
