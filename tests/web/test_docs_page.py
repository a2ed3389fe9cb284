"""The docs page's own files: pinned in the lock, unmodified, shipped, served from the
API's origin (no CDN), under any prefix."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import httpx
from hatchling.builders.wheel import WheelBuilder

from conveyor import App
from conveyor.web import create_api
from conveyor.web.docs import LOCK, PACKAGE, STATIC

from ..cli.conftest import ROOT
from .conftest import run


def test_the_vendored_files_are_the_locked_ones_unmodified() -> None:
    pinned = json.loads(LOCK.read_text())[PACKAGE]
    folder = STATIC / "vendor" / f"{PACKAGE}-{pinned['version']}"
    assert pinned["tarball"] == (
        f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{pinned['version']}.tgz"
    )
    assert {"LICENSE", "swagger-ui-bundle.js", "swagger-ui.css"} <= set(pinned["files"])
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert on_disk == pinned["files"]  # edited by hand, or a file added or left behind
    assert [p.name for p in (STATIC / "vendor").iterdir()] == [folder.name]
    assert (
        f"`{PACKAGE}` {pinned['version']}, {pinned['license']}"
        in (ROOT / "docs/api.md").read_text()
    )


def test_the_docs_page_loads_everything_from_its_own_origin() -> None:
    app = App("docs", backend="memory://")

    async def scenario(prefix: str) -> None:
        transport = httpx.ASGITransport(app=create_api(app, prefix=prefix))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            page = await c.get(f"{prefix}/docs")  # no token: as before, the page is public
            assert page.status_code == 200
            assert page.headers["x-frame-options"] == "DENY"
            urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert len(urls) == 3, page.text  # the script, the style sheet, the icon
            assert "://" not in page.text  # no other origin named at all
            for url in urls:
                assert url.startswith(f"{prefix}/docs/{PACKAGE}-"), url
                asset = await c.get(url)
                assert asset.status_code == 200, url
                # a versioned path never changes: cached for good, its type not sniffed
                assert "immutable" in asset.headers["cache-control"], url
                assert asset.headers["x-content-type-options"] == "nosniff", url
            assert f"url: '{prefix}/openapi.json'" in page.text
            missing = await c.get(f"{prefix}/docs/{PACKAGE}-0.0.0/swagger-ui.css")
            assert missing.json()["error"]["code"] == "not_found"

    for prefix in ("/api", "/queue"):
        run(scenario(prefix))


def test_the_wheel_ships_them_with_their_licence(tmp_path: Path) -> None:
    """A wheel built from this tree (as a release is) holds every file the lock names."""
    pinned = json.loads(LOCK.read_text())[PACKAGE]
    wheel = next(
        iter(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    )
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = f"conveyor/web/static/vendor/{PACKAGE}-{pinned['version']}"
    assert {f"{folder}/{name}" for name in pinned["files"]} | {
        "conveyor/web/static/frontend.lock.json"
    } <= names
