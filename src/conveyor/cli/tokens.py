"""``conveyor tokens create|list|revoke``: the REST API's bearer tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from ..control.audit import audited
from ..errors import ConveyorError
from . import AppRef, cli, console
from .output import errors_as_usage, json_option, out, print_json, when
from .serve import require_web

if TYPE_CHECKING:
    from ..web.tokens import TokenStore

ROLES = ("read", "operate", "admin")


def _store(ref: AppRef) -> TokenStore:
    require_web()
    from ..web.tokens import TokenStore  # here: the rest of the CLI works without the web extra

    return TokenStore(ref.load().backend)


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
    found = _store(ref).all()
    if as_json:
        print_json(found)
        return
    table = Table("id", "name", "role", "created")
    for token in found:
        table.add_row(token.id, token.name, token.role, when(token.created_at))
    out.print(table if found else "no tokens (create one: conveyor tokens create --role ...)")


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
