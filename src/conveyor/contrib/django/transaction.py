"""Commit-safe enqueue.

- ``enqueue_on_commit(task, *args, **kwargs)``: enqueue once the current transaction
  commits (nothing if it rolls back), the ``transaction.on_commit`` idiom in one call; it
  takes a Django task, or a Conveyor signature or workflow (``chain(...)``).
- When the jobs live in the PostgreSQL database Django writes to (``CONVEYOR["DATABASE"]``
  names it, or the backend URL points at the same host, port and database), a job stored
  inside ``transaction.atomic()`` is written on Django's own connection, inside that
  transaction: the job exists if and only if the transaction commits. Every way of
  storing one joins: a Django task's ``.enqueue()``, and the project's Conveyor app's
  ``delay()``, ``apply_async()``, ``send_task()``, ``enqueue_many()`` and a signature's or
  workflow's ``apply_async()`` (``DjangoApp.joined_connection``, ``App._store``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from conveyor import App

from .compat import Task


def _same_database(app: App, raw: Any, named: str | None) -> bool:
    """Whether Django's connection ``raw`` reaches the database the jobs are in: the same
    database name always (a job written elsewhere is one no worker reads), and without
    ``CONVEYOR["DATABASE"]`` the same host and port too (named, the user vouches for them:
    a socket and a host name may reach one server)."""
    conninfo = getattr(app.backend, "conninfo", None)
    if conninfo is None:
        return False
    from psycopg.conninfo import conninfo_to_dict

    ours = conninfo_to_dict(conninfo)
    info = raw.info
    if str(ours.get("dbname")) != info.dbname:
        return False
    return named is not None or (
        str(ours.get("host") or "localhost") == (info.host or "localhost")
        and str(ours.get("port") or 5432) == str(info.port)
    )


def join_alias(named: str | None) -> str:
    """The Django database whose transactions jobs join: ``CONVEYOR["DATABASE"]``, else
    Django's default database."""
    return named or DEFAULT_DB_ALIAS


def joined_connection(app: App, named: str | None) -> Any | None:
    """Django's psycopg connection when a job stored now should join its open
    transaction (see the module docstring); None otherwise. ``named``: the database
    ``CONVEYOR["DATABASE"]`` names, if any."""
    connection = connections[join_alias(named)]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return None
    if not app.conf.backend_url.startswith(("postgres://", "postgresql://")):
        return None
    raw = connection.connection
    if raw is None or not hasattr(raw, "info"):  # psycopg2: Conveyor speaks psycopg 3
        return None
    return raw if _same_database(app, raw, named) else None


def enqueue_on_commit(target: Any, *args: Any, using: str | None = None, **kwargs: Any) -> None:
    """Enqueue ``target`` when the transaction on ``using`` commits (at once outside one).

    ``target``: a Django task (``.enqueue(*args, **kwargs)``), or a Conveyor signature or
    workflow (``.apply_async(**kwargs)`` with its options).
    """
    send: Callable[[], Any]
    if isinstance(target, Task):
        send = lambda: target.enqueue(*args, **kwargs)  # noqa: E731
    elif hasattr(target, "apply_async"):
        if args:
            raise TypeError("a signature or workflow takes its arguments when built, not here")
        send = lambda: target.apply_async(**kwargs)  # noqa: E731
    else:
        raise TypeError(
            f"enqueue_on_commit takes a Django task, a signature or a workflow, not {target!r:.60}"
        )
    transaction.on_commit(send, using=using)
