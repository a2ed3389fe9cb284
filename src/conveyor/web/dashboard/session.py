"""Who is looking at the dashboard, and whether a form really comes from it.

A token logs in once (the login form); its secret then rides in an HttpOnly,
SameSite=Strict cookie scoped to the dashboard, and is checked against the token store
on every request, so revoking the token ends the session at once. The role is the
token's, as in the API: ``read`` sees every page and no control that changes anything.

Every change is a POST carrying a CSRF field derived from the session's secret (another
site cannot read the cookie, so cannot compute it), from a page of this origin
(``Sec-Fetch-Site`` / ``Origin``, as browsers send them). Without a token stored and on
a loopback address (``until-first-token``), or with ``auth="off"``, no login is asked:
the same rules as the API.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request

from ..auth import LOCAL_ACTOR, LOCAL_HOSTS, SERVICE_ACTOR, AuthMode
from ..tokens import Role, TokenStore, allows

if TYPE_CHECKING:
    from ...app import App

COOKIE = "conveyor_session"


@dataclass(frozen=True)
class Viewer:
    """The person at the browser: a token's name and role, or the tokenless local user."""

    #: As the audit trail names this viewer: the token's name, or the API's name for
    #: the same tokenless caller (``auth.LOCAL_ACTOR``, ``auth.SERVICE_ACTOR``).
    name: str
    role: Role
    #: What CSRF fields must carry for this viewer.
    csrf: str
    #: Whether a logout makes sense (a cookie session).
    session: bool
    #: The token's id, as the audit trail names it ("" without a token).
    token_id: str = ""
    #: What the header says of this viewer in place of ``name`` ("": the name).
    header: str = ""

    def can(self, needed: Role) -> bool:
        return allows(self.role, needed)


class LoginRequired(Exception):
    """No valid session: the page answers with the login form."""


def csrf_for(secret: str) -> str:
    return hmac.new(b"conveyor-dashboard-csrf", secret.encode(), hashlib.sha256).hexdigest()


def viewer(app: App, mode: AuthMode, request: Request) -> Viewer:
    """The viewer of this request; raises ``LoginRequired`` when a login is needed. Runs
    on a thread (it reads the token store)."""
    if mode == "off":
        return Viewer(SERVICE_ACTOR, "admin", csrf_for("off"), session=False,
                      header="no login: the service in front authenticates; role")  # fmt: skip
    store = TokenStore(app.backend)
    secret = request.cookies.get(COOKIE)
    if secret and len(secret) <= 200:
        token = store.verify(secret)
        if token is not None:
            return Viewer(token.name, token.role, csrf_for(secret), session=True, token_id=token.id)
    local = mode == "until-first-token" and request.url.hostname in LOCAL_HOSTS
    if local and not store.exists():
        return Viewer(LOCAL_ACTOR, "admin", csrf_for("local"), session=False,
                      header="no login needed on this machine until a token exists; role")  # fmt: skip
    raise LoginRequired


def same_origin(request: Request) -> bool:
    """Whether the browser says this request comes from a page of this very site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


def valid_form(request: Request, who: Viewer, csrf: str | None) -> bool:
    return same_origin(request) and csrf is not None and hmac.compare_digest(csrf, who.csrf)
