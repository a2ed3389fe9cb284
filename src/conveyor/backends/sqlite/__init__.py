"""``sqlite:///path``: the SQLite backend (see ``backend``).

``connection`` holds each thread's connection and its write transactions;
``migrations`` the schema's creation and upgrades; ``codec`` a job record as a row;
``backend`` the primitives and the polled revocation watch.
"""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
