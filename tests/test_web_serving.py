"""The relay serves the built web client: one shell for every app route, hashed files with
long cache headers, the service worker at a fixed URL, and a clear page without a build."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from pathlib import Path

import httpx
import trio
from starlette.applications import Starlette

from relay.web import IMMUTABLE, load_build, render_shell, web_routes


def _manifest(dist: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((dist / "manifest.json").read_text())
    return data


async def test_every_app_route_answers_the_same_shell(relay_url: str, web_dist: Path) -> None:
    manifest = _manifest(web_dist)
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            pages = [
                (await http.get(path)) for path in ("/", "/join/1234", "/shoot/1234", "/view/1234")
            ]
    assert {page.status_code for page in pages} == {200}
    assert len({page.text for page in pages}) == 1
    shell = pages[0]
    assert shell.headers["content-type"].startswith("text/html")
    assert shell.headers["cache-control"] == "no-cache"
    # The template's placeholders became the hashed names of this build.
    assert f'src="/static/{manifest["main.js"]}"' in shell.text
    assert f'href="/static/{manifest["app.css"]}"' in shell.text
    assert "{{" not in shell.text
    assert re.fullmatch(r"main-[A-Z0-9]{8}\.js", manifest["main.js"])


async def test_a_page_the_app_does_not_have_is_the_app_with_a_404(
    relay_url: str, web_dist: Path
) -> None:
    """A browser on a mistyped link gets the app (which says there is no such page);
    the API, scripts and other methods keep the API's JSON 404."""
    html = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shell = await http.get("/")
            page = await http.get("/nonsense/deeper", headers=html)
            script = await http.get("/nonsense")
            api = await http.get("/api/nonsense", headers=html)
            posted = await http.post("/nonsense", headers=html)
            wrong_method = await http.get("/api/shoots", headers=html)
    assert wrong_method.status_code == 405  # an address that exists keeps its own answer
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert page.text == shell.text
    for refused in (script, api, posted):
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "not_found"


async def test_hashed_files_are_immutable_and_gzipped(relay_url: str, web_dist: Path) -> None:
    manifest = _manifest(web_dist)
    on_disk = (web_dist / manifest["main.js"]).read_bytes()
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            js = await http.get(f"/static/{manifest['main.js']}")
            raw = await http.get(
                f"/static/{manifest['main.js']}", headers={"Accept-Encoding": "identity"}
            )
            css = await http.get(f"/static/{manifest['app.css']}")
            worker = await http.get("/sw.js")
            missing = [
                (await http.get(path)).status_code
                for path in (
                    "/static/main-NOTBUILT.js",
                    "/static/manifest.json",
                    "/static/index.html",
                    "/static/..%2Fhttp.py",
                    "/static/sw.js",
                )
            ]
    assert js.status_code == 200
    assert js.headers["cache-control"] == IMMUTABLE
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.headers["content-encoding"] == "gzip"
    assert js.headers["x-content-type-options"] == "nosniff"
    assert js.content == on_disk  # httpx undid the gzip
    assert raw.content == on_disk
    assert "content-encoding" not in raw.headers
    assert css.headers["content-type"].startswith("text/css")
    assert worker.status_code == 200
    assert worker.headers["cache-control"] == "no-cache"
    assert worker.headers["service-worker-allowed"] == "/"
    assert missing == [404] * 5


async def test_a_missing_build_answers_a_clear_page(tmp_path: Path) -> None:
    app = Starlette(routes=web_routes(tmp_path / "dist"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
        page = await http.get("/join/1234")
        asset = await http.get("/static/main-ABCDEFGH.js")
        worker = await http.get("/sw.js")
    assert page.status_code == 503
    assert "The web client is not built" in page.text
    assert asset.status_code == 404
    assert worker.status_code == 404


async def test_a_rebuild_is_picked_up_without_a_restart(tmp_path: Path, web_dist: Path) -> None:
    dist = tmp_path / "dist"
    shutil.copytree(web_dist, dist)
    app = Starlette(routes=web_routes(dist))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
        before = (await http.get("/")).text
        manifest = _manifest(dist)
        (dist / "main-REBUILT1.js").write_text("console.log('new')")
        manifest["main.js"] = "main-REBUILT1.js"
        (dist / "manifest.json").write_text(json.dumps(manifest))
        # A new mtime even on file systems with coarse timestamps.
        stat = (dist / "manifest.json").stat()

        os.utime(dist / "manifest.json", (stat.st_atime, stat.st_mtime + 5))
        after = (await http.get("/")).text
        new_js = await http.get("/static/main-REBUILT1.js")
    assert "main-REBUILT1.js" not in before
    assert "/static/main-REBUILT1.js" in after
    assert new_js.text == "console.log('new')"


def test_a_template_naming_an_unbuilt_file_is_not_a_build(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<script src='{{ main.js }}'></script>{{other.js}}")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"index.html": "index.html", "main.js": "main-A.js"})
    )
    assert load_build(tmp_path) is None
    assert render_shell("{{ main.js }}", {"main.js": "main-A.js"}) == "/static/main-A.js"


def test_shell_gzip_round_trips(web_dist: Path) -> None:
    build = load_build(web_dist)
    assert build is not None
    asset = build.assets[build.manifest["main.js"]]
    assert asset.gzipped is not None
    assert gzip.decompress(asset.gzipped) == asset.body
