"""``conveyor tokens create|list|revoke``: the REST API's bearer tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..control.audit import audited
from ..errors import ConveyorError
from . import AppRef, cli, console
from .output import errors_as_usage, json_option, out, print_json, print_table, when
from .serve import require_web

if TYPE_CHECKING:
    from ..web.tokens import TokenStore

ROLES = ("read", "operate", "admin")


def _store(ref: AppRef, existing: bool = False) -> TokenStore:
    require_web()
    from ..web.tokens import TokenStore  # here: the rest of the CLI works without the web extra

    return TokenStore(ref.load(existing).backend)


@cli.group()
def tokens() -> None:
    """API tokens (roles: read < operate < admin), stored hashed in the backend."""


@tokens.command()
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--name", required=True, help="Who or what uses it (e.g. ci, dashboard).")
@click.pass_obj
@errors_as_usage
def create(ref: AppRef, role: str, name: str) -> None:
    """Create a token; its secret is printed once, on stdout, and never again."""
    store = _store(ref)
    with audited(ref.load(), "conveyor tokens create", name=name, role=role) as change:
        token, secret = store.create(name, role)
        change.target = token.id
    console.print(
        f"token [bold]{token.id}[/bold] ({token.name}, role {token.role}) created; "
        "keep the secret below, it is not stored and cannot be shown again:"
    )
    click.echo(secret)


@tokens.command("list")
@json_option
@click.pass_obj
@errors_as_usage
def list_tokens(ref: AppRef, as_json: bool) -> None:
    """Every token: id, name, role, created (never the secret)."""
    found = _store(ref, existing=True).all()
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("no tokens (create one: conveyor tokens create --role ...)")
        return
    rows = [[t.id, t.name, t.role, when(t.created_at)] for t in found]
    print_table("Tokens", ("id", "name", "role", "created"), rows)


@tokens.command()
@click.argument("token_id")
@click.pass_obj
@errors_as_usage
def revoke(ref: AppRef, token_id: str) -> None:
    """Delete a token: requests carrying it are refused from now on."""
    store = _store(ref)
    with audited(ref.load(), "conveyor tokens revoke", token_id):
        if not store.revoke(token_id):
            raise ConveyorError(f"no token has id {token_id!r}; see: conveyor tokens list")
    console.print(f"token {token_id} revoked")
