"""The relay's garbage-collector policy (relay.collector), on CPython's real collector; and
what a closed session and an unloaded shoot leave for it (a real relay, real WebSockets).

Automatic collections are off in these tests and every full collection is the test's own
``gc.collect()``, so which collection freezes and which thaws is exact.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import re
import weakref
from collections.abc import Iterator

import httpx
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request
from wsproto.frame_protocol import FrameDecoder, FrameProtocol

from relay.actor import ShootActor
from relay.collector import Collector
from relay.config import Settings
from relay.follower import ShootFollower
from relay.metrics import Metrics
from relay.server import serve_relay
from sync.codec import decode_server, encode
from sync.protocol import Hello, Welcome
from tests.wire import create_shoot, peer


class _Node:
    """A container the collector tracks; two of them pointing at each other are a cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> _Node:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a


@pytest.fixture
def collector_of_the_test() -> Iterator[None]:
    """Automatic collections off, and the process's collector as it was afterwards."""
    callbacks, threshold, enabled = list(gc.callbacks), gc.get_threshold(), gc.isenabled()
    gc.disable()
    gc.collect()
    try:
        yield
    finally:
        gc.callbacks[:] = callbacks
        gc.set_threshold(*threshold)
        gc.unfreeze()
        if enabled:
            gc.enable()


@pytest.mark.usefixtures("collector_of_the_test")
def test_what_survives_a_full_collection_is_out_of_the_next_ones_sight() -> None:
    Collector(thaw_every=10).install()
    survivors = [_Node() for _ in range(1_000)]
    frozen_before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= frozen_before + len(survivors)
    walked = {id(o) for o in gc.get_objects()}  # what a collection walks: not the frozen
    assert not any(id(node) in walked for node in survivors)


@pytest.mark.usefixtures("collector_of_the_test")
def test_cycles_that_die_frozen_wait_for_the_thaw_and_are_freed_then() -> None:
    collector = Collector(thaw_every=3)
    collector.install()
    cycles = [_cycle() for _ in range(100)]
    alive = [weakref.ref(node) for node in cycles]
    gc.collect()  # 1: the cycles survive it and are frozen
    del cycles  # now garbage, but only a walk of the frozen heap can find it
    gc.collect()  # 2
    assert all(ref() is not None for ref in alive), "a frozen cycle was collected"
    gc.collect()  # 3: the thaw
    assert (collector.full_collections, collector.thaws) == (3, 1)
    gc.collect()  # 4: walks the whole heap
    assert all(ref() is None for ref in alive), "the thaw did not free the frozen cycles"
    assert gc.get_freeze_count() > 0, "what the whole walk left was not frozen again"


@pytest.mark.usefixtures("collector_of_the_test")
def test_what_survives_a_middle_collection_is_out_of_the_full_ones_sight() -> None:
    Collector(thaw_every=10).install()
    survivors = [_Node() for _ in range(1_000)]
    frozen_before = gc.get_freeze_count()
    gc.collect(1)
    assert gc.get_freeze_count() >= frozen_before + len(survivors)
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(node) in walked for node in survivors)


@pytest.mark.usefixtures("collector_of_the_test")
def test_after_a_thaw_a_middle_collection_leaves_the_heap_for_the_full_walk() -> None:
    """Frozen again by a middle collection between the thaw and the walk of everything,
    dead cycles would wait for the next thaw."""
    collector = Collector(thaw_every=2)
    collector.install()
    gc.collect()  # 1
    cycles = [_cycle() for _ in range(100)]
    alive = [weakref.ref(node) for node in cycles]
    gc.collect(1)  # the cycles survive it and are frozen
    del cycles
    gc.collect()  # 2: the thaw
    assert collector.thaws == 1
    gc.collect(1)  # before the walk of everything: it must not freeze them again
    assert all(ref() is not None for ref in alive)  # a middle collection leaves old cycles
    gc.collect()  # 3: walks the whole heap
    assert all(ref() is None for ref in alive), "the cycles were frozen again after the thaw"
    cycles = [_cycle() for _ in range(10)]
    gc.collect(1)  # the walk is done: middle collections freeze again
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(node) in walked for node in cycles)


@pytest.mark.usefixtures("collector_of_the_test")
def test_uninstalled_it_leaves_nothing_frozen_and_no_hook() -> None:
    collector = Collector()
    collector.install()
    gc.collect()
    collector.uninstall()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert collector.full_collections == 1


@pytest.mark.usefixtures("collector_of_the_test")
async def test_a_closed_session_leaves_nothing_for_the_collector(relay_url: str) -> None:
    """A session's objects (socket, subscriber, parser, heartbeat machine) are freed by
    reference counting when it ends: the collector freezes long-lived objects, and a cycle
    among them would wait for the next whole walk (it left about twenty per session)."""
    sessions = 20
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(sessions):
                    viewer = await stack.enter_async_context(peer(relay_url, code))
                    await viewer.expect(Welcome)
            while "fastshoot_connections 0\n" not in (await http.get("/metrics")).text:
                await trio.sleep(0.01)  # polling the relay's own count, bounded above
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = [type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("relay")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert {"OwnedSocket", "Subscriber", "ClientFrames"}.isdisjoint(left), left


@pytest.mark.usefixtures("collector_of_the_test")
def test_metrics_show_what_is_frozen_and_what_each_generation_collected() -> None:
    """Frozen garbage is invisible to the collector: ``/metrics`` lets an operator see the
    frozen count grow."""

    def scraped(line: str) -> int:
        found = re.search(rf"^{re.escape(line)} (\d+)$", Metrics().render(), re.MULTILINE)
        assert found is not None, line
        return int(found.group(1))

    Collector(thaw_every=10).install()
    full = 'fastshoot_gc_collections_total{generation="2"}'
    freed = 'fastshoot_gc_collected_total{generation="2"}'
    before = {line: scraped(line) for line in (full, freed, "fastshoot_gc_frozen_objects")}
    survivors = [_Node() for _ in range(1_000)]
    garbage = [_cycle() for _ in range(50)]
    del garbage
    gc.collect()
    assert scraped("fastshoot_gc_frozen_objects") == gc.get_freeze_count()
    assert gc.get_freeze_count() >= before["fastshoot_gc_frozen_objects"] + len(survivors)
    assert scraped(full) == before[full] + 1
    assert scraped(freed) >= before[freed] + 50 * 2


@pytest.mark.usefixtures("collector_of_the_test")
async def test_a_session_ended_without_a_close_frame_leaves_nothing_for_the_collector(
    relay_url: str,
) -> None:
    """A phone that loses its network ends its session with no close frame. wsproto's frame
    parser, a generator held by the object it parses for, ends only after a close frame:
    left running, it kept nine objects per session in a cycle, which the collector frees
    without counting them (``gc.DEBUG_SAVEALL`` does not see them either). Automatic
    collections are off here, so whatever a cycle holds is still alive to be counted."""
    sessions = 20
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            await _hang_up_after_welcome(relay_url, code)  # the shoot loads on the first
            await _until_metric(http, relay_url, "fastshoot_connections 0")
            before = _alive_by_type()
            for _ in range(sessions):
                await _hang_up_after_welcome(relay_url, code)
            await _until_metric(http, relay_url, "fastshoot_connections 0")
            after = _alive_by_type()
    grown = {name: after[name] - before[name] for name in after if after[name] > before[name]}
    assert not {name: n for name, n in grown.items() if n >= sessions}, grown


async def _hang_up_after_welcome(relay_url: str, code: str) -> None:
    """A viewer's session to its welcome, then a hang-up: no close frame, as when a phone
    loses its network."""
    host, port = relay_url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/ws")))
        while not any(isinstance(event, AcceptConnection) for event in ws.events()):
            ws.receive_data(await stream.receive_some(65536))
        await stream.send_all(ws.send(BytesMessage(encode(Hello(code, "viewer")))))
        while True:
            ws.receive_data(await stream.receive_some(65536))
            for event in ws.events():
                if isinstance(event, BytesMessage) and isinstance(
                    decode_server(event.data), Welcome
                ):
                    return


def _alive_by_type() -> collections.Counter[str]:
    """The relay's live objects by type, and its wsproto parsers (the test's clients hang
    up too, and their own parsers stay in cycles: not the relay's)."""
    alive: collections.Counter[str] = collections.Counter()
    for o in gc.get_objects():
        module = type(o).__module__  # not always a string: a class may define its own
        ours = isinstance(module, str) and module.startswith(("relay.", "sync."))
        if ours or (isinstance(o, FrameProtocol | FrameDecoder) and not o.client):
            alive[f"{module}.{type(o).__qualname__}"] += 1
    return alive


def test_a_thaw_needs_at_least_one_collection_between() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Collector(thaw_every=0)


@pytest.mark.usefixtures("collector_of_the_test")
async def test_an_unloaded_shoot_leaves_nothing_for_the_collector(
    redis_url: str, nursery: trio.Nursery
) -> None:
    """A shoot's parts call it back (its persister, its board's projector, its held
    updates), but once the shoot unloads, its objects are freed by reference counting, like
    a session's: not one waits in a cycle for a whole walk, and none is kept alive. Both
    ways a relay holds a shoot: as its owner (an actor), and following another relay."""
    owner_url = await _relay(nursery, redis_url)
    follower_url = await _relay(nursery, redis_url)
    with trio.fail_after(30):
        async with httpx.AsyncClient() as http:
            async with httpx.AsyncClient(base_url=owner_url) as creating:
                code = (await create_shoot(creating))["code"]
            async with peer(owner_url, code) as viewer, peer(follower_url, code) as follower:
                await viewer.expect(Welcome)  # the first relay owns the shoot,
                await follower.expect(Welcome)  # the second follows it
            for url in (owner_url, follower_url):
                await _until_metric(http, url, "fastshoot_live_shoots 0")
                await _until_metric(http, url, "fastshoot_followed_shoots 0")
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = [type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    ours = [name for name in left if name.startswith(("relay.", "sync.", "pycrdt."))]
    assert not ours, ours
    assert not [o for o in gc.get_objects() if isinstance(o, ShootActor | ShootFollower)]


async def _relay(nursery: trio.Nursery, redis_url: str) -> str:
    """A relay that unloads a shoot 0.1 s after its last session."""
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, idle_timeout_s=0.1)
    url: str = await nursery.start(serve_relay, settings)
    return url


async def _until_metric(http: httpx.AsyncClient, url: str, line: str) -> None:
    while f"{line}\n" not in (await http.get(f"{url}/metrics")).text:
        await trio.sleep(0.01)  # polling the relay's own count, bounded by the caller
