"""The status page's style and script are package data: a wheel carries them and the app serves
them with their types, whatever the platform's MIME table says."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import httpx
from starlette.applications import Starlette

import exporter
from exporter.web.app import ROUTES, STATIC_TYPES

ROOT = Path(exporter.__file__).parent.parent
STATIC = Path(exporter.__file__).parent / "web" / "static"


def test_every_static_file_is_package_data_and_served() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["exporter.web"]
    shipped = {p.name for p in STATIC.iterdir()}
    assert shipped == set(STATIC_TYPES)
    for name in shipped:
        assert any(fnmatch.fnmatch(f"static/{name}", g) for g in globs), name


async def test_the_app_serves_them_with_their_types() -> None:
    transport = httpx.ASGITransport(app=Starlette(routes=ROUTES))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for name, media_type in STATIC_TYPES.items():
            response = await client.get(f"/static/{name}")
            assert response.status_code == 200
            assert response.headers["content-type"].split(";")[0] == media_type
            assert response.content == (STATIC / name).read_bytes()
        assert (await client.get("/static/other.js")).status_code == 404
        assert (await client.post("/static/status.js")).status_code == 405
