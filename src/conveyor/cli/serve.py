"""``conveyor serve``: the REST API under uvicorn, supervised like a worker."""

from __future__ import annotations

import importlib
import sys

import click

from ..control.doctor import missing_store
from ..control.util import hide_password
from ..extras import install_hint
from ..worker.supervisor import Supervisor
from . import AppRef, cli, console, loglevel_option, setup_logging
from .output import errors_as_usage


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Any but loopback needs an API token (conveyor tokens create).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@loglevel_option
@click.pass_obj
@errors_as_usage
def serve(ref: AppRef, host: str, port: int, loglevel: str) -> None:
    """Serve the REST API (docs at /api/docs) and the dashboard (/ui/) until SIGINT/SIGTERM."""
    require_web()
    from ..web import TokenStore, WebService, create_api
    from ..web.service import auth_for

    setup_logging(loglevel)
    app = ref.load()
    # Serving creates the store (a submission needs one), but an empty dashboard should
    # not be a mystery: a mistyped name is said once, here.
    created = missing_store(app)
    has_tokens = TokenStore(app.backend).exists()
    auth = auth_for(host, has_tokens, app.command)
    service = WebService(create_api(app, auth=auth), host=host, port=port, log_level=loglevel)
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"[bold]conveyor serve[/bold] http://{shown}:{port}/api  (docs: /api/docs)\n"
        f"  dashboard    http://{shown}:{port}/ui/\n"
        f"  metrics      http://{shown}:{port}/metrics  (Prometheus; docs/metrics.md)\n"
        f"  backend      {hide_password(app.conf.backend_url)}\n"
        f"  auth         {_describe(auth, has_tokens)}\n"
        f"  exposed      {', '.join(app.conf.http_tasks) or 'no task (set app.conf.http_tasks)'}"
        + (
            f"\n  [yellow]new store[/yellow]    {created}; serving created an empty one"
            if created
            else ""
        )
    )
    sys.exit(Supervisor([service]).run())


#: What the web extra brings that ``conveyor.web`` imports when it loads: an install made
#: before one of them joined the extra (prometheus_client, for ``/metrics``) lacks it.
WEB_MODULES = ("fastapi", "uvicorn", "jinja2", "prometheus_client")


def require_web() -> None:
    """Fail with the install command when a module of the web extra is missing."""
    try:
        for module in WEB_MODULES:
            importlib.import_module(module)
    except ImportError as exc:
        raise click.ClickException(
            f"the REST API needs the web extra ({exc.name} is missing): {install_hint('web')}"
        ) from None


def _describe(auth: str, has_tokens: bool) -> str:
    if auth == "until-first-token" and not has_tokens:
        return "none needed from this machine until a token exists (conveyor tokens create)"
    return "bearer token required"
