"""``redis://`` and ``rediss://``: the Redis backend (see ``backend``).

``connection`` holds the client, each thread's connection and the Lua scripts
(``lua/``); ``codec`` a job record as a Redis hash; ``watch`` the revocation watch;
``aio`` the reads made on an event loop; ``backend`` the primitives.
"""

from .backend import RedisBackend

__all__ = ["RedisBackend"]
