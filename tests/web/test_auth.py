"""Auth: tokens stored hashed, 401 without one, 403 for a read token on every mutation,
the loopback-only open mode, and the refusal to serve a public address with no token."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conveyor import App
from conveyor.cli import cli
from conveyor.errors import ConfigurationError
from conveyor.extras import install_hint
from conveyor.web import TokenStore, create_api
from conveyor.web.service import auth_for, is_loopback
from conveyor.web.tokens import INDEX_KEY

from .conftest import Client, run

MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}


def api_routes(app: App) -> list[tuple[str, str]]:
    """(method, path) of every route the API documents, path parameters filled in: a
    route added later is covered by the tests below without being named in them."""
    found = []
    for path, operations in create_api(app).openapi()["paths"].items():
        found += [(method.upper(), re.sub(r"\{[^}]+\}", "x", path)) for method in operations]
    return found


def test_reads_are_get_and_changes_never_are(web_app: App) -> None:
    routes = api_routes(web_app)
    assert len(routes) >= 18
    assert {method for method, _ in routes} <= {"GET", "POST", "PATCH", "DELETE"}


def test_no_token_is_401_on_every_route_but_health(web_app: App, client: Client) -> None:
    routes = api_routes(web_app)

    async def scenario() -> None:
        async with client(role=None) as c:
            for method, path in routes:
                r = await c.request(method, path, json={})
                if path.startswith("/api/health/"):
                    assert r.status_code in (200, 503), path
                    continue
                assert r.status_code == 401, (method, path, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert r.json()["error"]["code"] == "unauthorized"
                assert "tokens create" in r.json()["error"]["hint"]

    run(scenario())


def test_read_token_is_403_on_every_mutation_and_reads(web_app: App, client: Client) -> None:
    routes = api_routes(web_app)
    mutations = [(m, p) for m, p in routes if m in MUTATIONS]
    assert len(mutations) >= 9

    async def scenario() -> None:
        async with client(role="read") as c:
            for method, path in routes:
                # timeout: the event stream ends, and a result wait answers, at once
                r = await c.request(method, path, json={}, params={"timeout": 0.1})
                if method in MUTATIONS:
                    assert r.status_code == 403, (method, path, r.text)
                    assert r.json()["error"]["code"] == "forbidden"
                else:
                    assert r.status_code not in (401, 403), (method, path, r.text)
            assert (await c.get("/api/jobs")).status_code == 200

    run(scenario())
    assert web_app.backend.list_jobs() == []  # nothing a read token sent changed anything


@pytest.mark.parametrize("role", ["operate", "admin"])
def test_operate_and_admin_tokens_may_mutate(client: Client, role: str) -> None:
    async def scenario() -> None:
        async with client(role=role) as c:
            r = await c.post("/api/jobs", json={"task": "web.add", "args": [1, 1]})
            assert r.status_code == 201
            assert (await c.post("/api/queues/default/pause")).status_code == 200

    run(scenario())


def test_bad_revoked_and_malformed_tokens_are_401(web_app: App, client: Client) -> None:
    store = TokenStore(web_app.backend)
    token, secret = store.create("soon-gone", "operate")

    async def status(header: str) -> int:
        async with client(role=None) as c:
            return (await c.get("/api/jobs", headers={"Authorization": header})).status_code

    assert run(status(f"Bearer {secret}")) == 200
    assert run(status(f"Bearer {secret[:-1]}x")) == 401  # one character off
    assert run(status(f"Basic {secret}")) == 401
    assert run(status("Bearer cvy_" + "a" * 500)) == 401
    assert run(status("Bearer not-a-token")) == 401
    assert store.revoke(token.id)
    assert run(status(f"Bearer {secret}")) == 401


def test_tokens_are_stored_hashed(web_app: App) -> None:
    store = TokenStore(web_app.backend)
    token, secret = store.create("ci", "read")
    assert secret.startswith(f"cvy_{token.id}_")
    assert len(secret) > 40
    entry = web_app.backend.kv_get(f"api-token:{token.id}")
    assert entry["sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(entry)
    assert web_app.backend.kv_get(INDEX_KEY) == [token.id]
    assert store.verify(secret) == token
    assert [t.name for t in store.all()] == ["ci"]
    assert store.revoke(token.id)
    assert not store.revoke(token.id)
    assert not store.exists()
    with pytest.raises(ConfigurationError, match="unknown role"):
        store.create("x", "root")


def test_required_mode_with_no_token_stored_refuses_with_how_to_create_one() -> None:
    app = App("fresh", backend="memory://")

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_api(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return await c.get("/api/queues")

    r = run(scenario())
    assert r.status_code == 401
    assert "conveyor -A <app> tokens create" in r.json()["error"]["hint"]
    # an app that knows how it is run says so (a Django project's: manage.py conveyor)
    app.main = "shop.jobs:app"
    r = run(scenario())
    assert (
        "create one: conveyor -A shop.jobs:app tokens create --role read"
        in r.json()["error"]["hint"]
    )


def test_until_first_token_is_open_to_localhost_only_until_a_token_exists() -> None:
    app = App("local", backend="memory://")
    api = create_api(app, auth="until-first-token")

    async def status(host: str, **headers: str) -> int:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}:8000") as c:
            return (await c.get("/api/queues", headers=headers)).status_code

    assert run(status("localhost")) == 200
    assert run(status("127.0.0.1")) == 200
    assert run(status("evil.example")) == 401  # DNS rebinding: a page's host name, not ours
    _, secret = TokenStore(app.backend).create("first", "read")
    assert run(status("localhost")) == 401  # closed at once by the first token
    assert run(status("localhost", Authorization=f"Bearer {secret}")) == 200


def test_until_first_token_refuses_what_a_page_of_another_site_sends() -> None:
    """A form or a no-cors fetch on any site can POST to localhost without a preflight:
    the tokenless local mode must not purge a queue for it."""
    app = App("local", backend="memory://")
    api = create_api(app, auth="until-first-token")

    async def purge(**headers: str) -> int:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
            return (await c.post("/api/queues/default/purge", headers=headers)).status_code

    assert run(purge(Origin="http://evil.example", **{"Content-Type": "text/plain"})) == 401
    assert run(purge(**{"Sec-Fetch-Site": "cross-site"})) == 401
    assert run(purge(Origin="null")) == 401  # a sandboxed page
    assert run(purge(Origin="http://localhost:8000", **{"Sec-Fetch-Site": "same-origin"})) == 200
    assert run(purge()) == 200  # curl and scripts send neither


def test_auth_off_needs_no_token() -> None:
    app = App("off", backend="memory://")

    async def scenario() -> int:
        transport = httpx.ASGITransport(app=create_api(app, auth="off"))
        async with httpx.AsyncClient(transport=transport, base_url="http://anywhere") as c:
            return (await c.post("/api/queues/q/pause")).status_code

    assert run(scenario()) == 200
    with pytest.raises(ValueError, match="auth must be"):
        create_api(app, auth="maybe")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_refuses_a_public_address_without_a_token() -> None:
    with pytest.raises(ConfigurationError, match=r"tokens create --role operate") as info:
        auth_for("0.0.0.0", has_tokens=False, command="conveyor -A myproject.tasks:app")
    assert "conveyor -A myproject.tasks:app tokens create" in str(info.value)
    assert auth_for("0.0.0.0", has_tokens=True) == "required"
    assert auth_for("127.0.0.1", has_tokens=False) == "until-first-token"


def test_tokens_cli_create_list_revoke(web_app: App) -> None:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(cli, ["-A", "tests.web.tasks:app", "tokens", *args])
        assert result.exit_code == 0, result.output
        return result

    created = invoke("create", "--role", "operate", "--name", "ci")
    secret = created.stdout.strip().splitlines()[-1]
    token = TokenStore(web_app.backend).verify(secret)
    assert token is not None
    assert (token.name, token.role) == ("ci", "operate")
    listed = invoke("list", "--json")
    assert f'"id": "{token.id}"' in listed.stdout
    assert secret not in listed.stdout
    invoke("revoke", token.id)
    assert TokenStore(web_app.backend).verify(secret) is None
    missing = runner.invoke(cli, ["-A", "tests.web.tasks:app", "tokens", "revoke", token.id])
    assert missing.exit_code == 1
    assert "no token" in missing.output


def test_cli_without_the_web_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if conveyor[web] were not installed
    for args in (["tokens", "list"], ["serve"]):
        result = CliRunner().invoke(cli, ["-A", "tests.web.tasks:app", *args])
        assert result.exit_code == 1
        # from where this install came (a checkout here), not a bare name an index resolves
        assert install_hint("web") in result.output
        assert "pip install 'conveyor[web]'" not in result.output


def test_a_revoked_token_stops_working_within_the_cache_time(web_app: App, client: Client) -> None:
    store = TokenStore(web_app.backend)
    token, secret = store.create("cached", "operate")

    async def scenario() -> list[int]:
        codes = []
        async with client(role=None, token_cache=0.5) as c:
            bearer = {"Authorization": f"Bearer {secret}"}
            codes.append((await c.get("/api/queues", headers=bearer)).status_code)
            store.revoke(token.id)
            codes.append((await c.get("/api/queues", headers=bearer)).status_code)  # trusted
            await asyncio.sleep(0.6)
            codes.append((await c.get("/api/queues", headers=bearer)).status_code)
            wrong = {"Authorization": f"Bearer {secret}x"}
            codes.append((await c.get("/api/queues", headers=wrong)).status_code)
        return codes

    assert run(scenario()) == [200, 200, 401, 401]
