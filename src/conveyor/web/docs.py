"""The API's interactive docs (Swagger UI), served with its own files from the API's
origin: no CDN, so the page works on a machine without internet access.

The files are swagger-ui-dist's, unmodified, with its licence, in ``static/vendor/``;
``scripts/fetch-frontend`` fetches them, pinned and checked against
``static/frontend.lock.json`` (the version served is the one that lock names)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
LOCK = STATIC / "frontend.lock.json"
PACKAGE = "swagger-ui-dist"
#: No other site may frame the page (its "Authorize" box takes a token: clickjacking).
HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


class VersionedFiles(StaticFiles):
    """Files under a versioned path never change: cached for a year, types not sniffed."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def swagger_ui() -> str:
    """The vendored Swagger UI's folder name (``swagger-ui-dist-<version>``)."""
    return f"{PACKAGE}-{json.loads(LOCK.read_text())[PACKAGE]['version']}"


def serve_docs(service: FastAPI, docs_url: str, openapi_url: str) -> None:
    """The docs page at ``docs_url``, for the document at ``openapi_url``, and its files
    under ``{docs_url}/swagger-ui-dist-<version>/``; like FastAPI's own, it needs no token
    (it shows what the document says; every call made from it sends the token given)."""
    folder = swagger_ui()
    assets = f"{docs_url}/{folder}"
    service.mount(assets, VersionedFiles(directory=STATIC / "vendor" / folder), name="docs-static")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{service.title} - Swagger UI",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon-32x32.png",
            swagger_ui_parameters=service.swagger_ui_parameters,
        )  # fmt: skip
        page.headers.update(HEADERS)
        return page

    service.add_route(docs_url, docs, include_in_schema=False)
    service.docs_url = docs_url  # where the service documents itself (errors' hints name it)
