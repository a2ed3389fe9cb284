"""``postgresql://``: the PostgreSQL backend (see ``backend``).

``connection`` holds the URL, the pool and ``guarded``; ``migrations`` the schema's
creation and upgrades; ``codec`` a job record as a row; ``watch`` the revocation watch;
``backend`` the primitives.
"""

from .backend import PostgresBackend

__all__ = ["PostgresBackend"]
