"""Who may call the API: bearer tokens (``tokens.py``), a role per token.

The role a request needs follows from its method, so a new route cannot forget it:
GET and HEAD read (``read``); every other method changes something (``operate``, or
``admin`` on the schedules' routes).
Health checks sit outside, on their own router.

Modes (``create_api(app, auth=...)``):

- ``"required"`` (the default): every request carries a valid token; with none stored,
  every request is refused, with how to create one.
- ``"until-first-token"``: like required, but while the store holds no token at all,
  requests addressed to localhost pass without one (``conveyor serve`` on a loopback
  address, for a first look). The first token created closes it, at once. The Host
  check keeps a web page from reaching it through DNS rebinding, and a request a browser
  sends for a page of another site (Sec-Fetch-Site, Origin) is refused: a form can POST
  to localhost without asking.
- ``"off"``: no checks; for a router mounted behind the service's own authentication.

A token found valid is remembered for ``token_cache`` seconds (1 by default; 0 checks the
backend on every request): checking it costs a backend read (on the event loop where the
backend reads there, Redis; else with a thread hop, as much as the submit itself). A revoked token therefore stops working within that time in a
serving process, not at the very instant; an unknown or wrong one is never remembered.
"""

import hashlib
import time
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.security import HTTPBearer

from .audit import identify
from .errors import ApiError
from .tokens import Role, Token, TokenStore, allows, entry_key, matching

if TYPE_CHECKING:
    from ..app import App

AuthMode = Literal["required", "until-first-token", "off"]
READ_METHODS = frozenset({"GET", "HEAD"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
#: Who the audit trail names without a token, the API and the dashboard alike: a caller
#: on this machine while no token exists (``until-first-token``), and any caller with
#: auth off (the service in front authenticated it).
LOCAL_ACTOR = "local"
SERVICE_ACTOR = "service"

#: How long a serving process trusts a token it found valid (seconds).
TOKEN_CACHE = 1.0
#: At most this many tokens are remembered at once (then the memory starts afresh).
CACHE_SIZE = 1024


def _create(app: "App", role: Role) -> str:
    """How to make a token of ``role``, in the app's own command (``manage.py conveyor``
    for a Django project)."""
    return f"create one: {app.command} tokens create --role {role} --name NAME"


class TrustedTokens:
    """Tokens found valid, trusted for ``seconds`` without another backend read."""

    def __init__(self, app: "App", seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self.trusted: dict[str, tuple[Token, float]] = {}  # sha256 of a secret -> (token, until)

    async def verify(self, secret: str) -> Token | None:
        key = hashlib.sha256(secret.encode()).hexdigest()
        now = time.monotonic()
        found = self.trusted.get(key)
        if found is not None and found[1] > now:
            return found[0]
        # On the event loop where the backend reads there (Redis), else on a thread.
        found_key = entry_key(secret)
        entry = await self.app.aio.kv_get(found_key) if found_key is not None else None
        token = matching(secret, entry)
        if token is not None and self.seconds > 0:
            if len(self.trusted) >= CACHE_SIZE:
                self.trusted.clear()
            self.trusted[key] = (token, now + self.seconds)
        return token


def needed_role(method: str, write_role: Role = "operate") -> Role:
    return "read" if method.upper() in READ_METHODS else write_role


class Authorizer(HTTPBearer):
    """The dependency every non-health route runs: the caller's token, or a 401/403.
    ``write_role``: what a change needs on these routes (``admin`` for schedules).
    ``token_cache``: how long a valid token is trusted without a backend read.

    It is the bearer scheme itself (named ``HTTPBearer`` in the OpenAPI document), listed
    in the routes' dependencies for that document, and called by the route class before
    the handler (``guard``, ``errors.ApiRoute``), not by FastAPI's dependency solving."""

    #: Called by ``ApiRoute`` before the handler instead of as a dependency.
    guard = True

    def __init__(
        self,
        app: "App",
        mode: AuthMode,
        write_role: Role = "operate",
        token_cache: float = TOKEN_CACHE,
    ) -> None:
        if mode not in ("required", "until-first-token", "off"):
            raise ValueError(f"auth must be 'required', 'until-first-token' or 'off', not {mode!r}")
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="A token from `conveyor tokens create` (cvy_...).",
        )
        self.app, self.mode, self.write_role = app, mode, write_role
        self.verify = TrustedTokens(app, token_cache).verify

    async def __call__(self, request: Request) -> Token | None:  # type: ignore[override]
        app, mode = self.app, self.mode
        if mode == "off":
            identify(request, app, SERVICE_ACTOR)  # the service in front authenticated the caller
            return None
        credentials = await super().__call__(request)
        needed = needed_role(request.method, self.write_role)
        if credentials is None:
            store = TokenStore(app.backend)  # the app's backend of the moment (tests swap it)
            local = mode == "until-first-token" and request.url.hostname in LOCAL_HOSTS
            if local and not _from_another_site(request) and not await app.aio.call(store.exists):
                identify(request, app, LOCAL_ACTOR)
                return None
            raise _unauthorized(
                app, "this API needs a bearer token: Authorization: Bearer cvy_...", needed
            )
        secret = credentials.credentials
        token = await self.verify(secret) if len(secret) <= 200 else None
        if token is None:
            raise _unauthorized(
                app, "the bearer token is not valid (unknown, revoked or mistyped)", needed
            )
        identify(request, app, token.name, token.id)
        if not allows(token.role, needed):
            raise ApiError(
                403, "forbidden",
                f"token {token.name!r} has role {token.role!r}; {request.method} needs {needed!r}",
                f"use a token with role {needed} or higher ({_create(app, needed)})",
            )  # fmt: skip
        request.state.token = token
        return token


def _from_another_site(request: Request) -> bool:
    """Whether a browser sent this on behalf of a page of another site. Such a page can
    POST to localhost without a preflight (a form, a no-cors fetch), so the tokenless
    local mode must not serve it: browsers say where a request comes from (Sec-Fetch-Site,
    Origin); curl, scripts and this machine's own pages are not refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return urlsplit(origin).hostname not in LOCAL_HOSTS


def _unauthorized(app: "App", message: str, needed: Role) -> ApiError:
    """401, its hint creating a token of the role the request needs (a scrape, a read)."""
    return ApiError(
        401, "unauthorized", message, _create(app, needed), {"WWW-Authenticate": "Bearer"}
    )
