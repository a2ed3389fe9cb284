"""``conveyor audit``: the changes made through the REST API, the dashboard and the CLI,
newest first."""

from __future__ import annotations

import click

from . import AppRef, cli
from .output import errors_as_usage, json_option, out, print_json, print_table, when


@cli.command()
@click.option("--target", help="Only changes to this job, queue or schedule.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@click.pass_obj
@errors_as_usage
def audit(ref: AppRef, target: str | None, limit: int, as_json: bool) -> None:
    """Changes made through the REST API, the dashboard or the CLI: when, who (a token,
    or cli:user@host), what, to what, outcome. (A submitted job names its submitter in its
    submitted_by header.)"""
    entries = ref.load(existing=True).backend.audit(limit=limit, target=target)
    if as_json:
        print_json(entries)
        return
    if not entries:
        out.print("no change is recorded")
        return
    rows = [
        [when(e.time), f"{e.actor} ({e.actor_id})" if e.actor_id else e.actor, e.action, e.target,
         f"{e.outcome} ({e.status})"]
        for e in entries
    ]  # fmt: skip
    print_table("Audit", ("when", "who", "action", "target", "outcome"), rows)
