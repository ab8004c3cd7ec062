"""QR codes: rendered off the event loop, one at a time, cached only for PUBLIC_URL."""

from __future__ import annotations

import threading

import httpx
import pytest
import trio
import trio.testing

from relay.config import Settings
from relay.qr import QrBusy, QrCodes, render
from relay.server import serve_relay
from tests.wire import create_shoot

PUBLIC = "https://shoot.example"


class Recorder:
    """A renderer that notes where and how many at once it runs, and waits to be let go."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.threads: set[int] = set()
        self.texts: list[str] = []
        self.release = threading.Event()

    def __call__(self, kind: str, text: str) -> bytes:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.get_ident())
            self.texts.append(text)
        try:
            self.release.wait(timeout=10)
            return f"{kind}:{text}".encode()
        finally:
            with self.lock:
                self.running -= 1


async def test_renders_run_on_a_worker_thread_one_at_a_time_and_few_may_wait() -> None:
    recorder = Recorder()
    codes = QrCodes(None, max_waiting=3, renderer=recorder)
    results: list[bytes] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(_collect, results, codes, f"{1000 + n}")
            deadline = trio.current_time() + 5
            while recorder.running < 1 and trio.current_time() < deadline:
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()
            assert recorder.running == 1  # the other three wait for the thread
            with pytest.raises(QrBusy):  # and a fifth is not queued behind them
                await codes.image("svg", "2000", PUBLIC)
            recorder.release.set()
    assert recorder.peak == 1
    assert threading.get_ident() not in recorder.threads
    assert sorted(results) == [f"svg:{PUBLIC}/join/{1000 + n}".encode() for n in range(4)]


async def _collect(results: list[bytes], codes: QrCodes, code: str) -> None:
    results.append(await codes.image("svg", code, PUBLIC))


async def test_only_the_public_origin_is_cached_and_the_cache_is_bounded() -> None:
    recorder = Recorder()
    recorder.release.set()
    codes = QrCodes(PUBLIC, max_cached=3, renderer=recorder)
    assert await codes.image("svg", "1234", PUBLIC) == await codes.image("svg", "1234", PUBLIC)
    assert (codes.statistics().renders, codes.statistics().hits) == (1, 1)
    # Another origin (a Host header chosen by the client) is rendered, never cached.
    for n in range(20):
        image = await codes.image("svg", "1234", f"http://host{n}.example")
        assert image == f"svg:http://host{n}.example/join/1234".encode()
    assert codes.statistics().cached == 1
    assert await codes.image("svg", "1234", PUBLIC) == f"svg:{PUBLIC}/join/1234".encode()
    # SVG and PNG are separate entries; the least recently used goes first.
    await codes.image("png", "1234", PUBLIC)
    await codes.image("svg", "5678", PUBLIC)
    await codes.image("svg", "1234", PUBLIC)  # used again: now the most recent
    await codes.image("svg", "9012", PUBLIC)
    assert codes.statistics().cached == 3
    renders = codes.statistics().renders
    await codes.image("svg", "1234", PUBLIC)
    assert codes.statistics().renders == renders  # kept
    await codes.image("png", "1234", PUBLIC)
    assert codes.statistics().renders == renders + 1  # evicted, rendered again


def test_the_real_renderers_make_svg_and_png() -> None:
    assert render("svg", f"{PUBLIC}/join/1234").lstrip().startswith(b"<?xml")
    assert render("png", f"{PUBLIC}/join/1234").startswith(b"\x89PNG")


async def test_with_public_url_the_host_header_changes_nothing(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(15):
        settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, public_url=PUBLIC)
        url: str = await nursery.start(serve_relay, settings)
        async with httpx.AsyncClient(base_url=url) as http:
            shoot = await create_shoot(http)
            assert shoot["join_url"] == f"{PUBLIC}/join/{shoot['code']}"
            path = f"/api/shoots/{shoot['code']}/qr.svg"
            images = {
                (await http.get(path, headers={"Host": f"h{n}.example"})).content for n in range(5)
            }
            assert len(images) == 1
            assert (await http.get(path)).content in images
            # The image is the public link's, whatever the Host.
            assert images == {render("svg", shoot["join_url"])}
            png = await http.get(path.replace(".svg", ".png"), headers={"Host": "x.example"})
            assert png.content == render("png", shoot["join_url"])


async def test_without_public_url_links_follow_a_valid_host_only(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            path = f"/api/shoots/{code}/qr.svg"
            a = await http.get(path, headers={"Host": "club.example:8080"})
            assert a.content == render("svg", f"http://club.example:8080/join/{code}")
            b = await http.get(path, headers={"Host": "[::1]:8080"})
            assert b.content == render("svg", f"http://[::1]:8080/join/{code}")
            for host in ("evil.example/<script>", "a b", "x" * 300, "user@evil.example"):
                bad = await http.get(path, headers={"Host": host})
                assert bad.status_code == 400, host
                assert bad.json()["error"]["code"] == "invalid_host"
                refused = await http.post(
                    "/api/shoots", json={"creator": "Sam"}, headers={"Host": host}
                )
                assert refused.status_code == 400
