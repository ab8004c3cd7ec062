"""Redis commands from the event loop (``relay.redis_wire``) and the store's append on it,
against a real redis-server; the thread path stays for what the wire does not speak."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
import redis
import trio
from redis.exceptions import BusyLoadingError, NoScriptError, ResponseError

from relay.redis_client import open_redis
from relay.redis_server import RedisServer
from relay.redis_wire import (
    IDLE_KEPT,
    MAX_CONNECTIONS,
    MAX_DEPTH,
    Wire,
    _Incomplete,
    encode_commands,
    parse_answer,
)
from relay.store import (
    Durability,
    Owner,
    RedisStore,
    ShootFenced,
    StoreUnavailable,
    parse_version,
)
from sync.models import Shoot
from tests.wire import now_ms


def _shoot(code: str) -> Shoot:
    now = now_ms()
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now, now + 3_600_000, "UTC")


def _wire(url: str, timeout_s: float = 2.0) -> Wire:
    wire = Wire.from_url(url, timeout_s)
    if wire is None:
        pytest.skip("the wire speaks to one plain server only (this run uses a cluster)")
    return wire


# -- the protocol, without a server ------------------------------------------------------


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode_commands([["SET", "k", b"\x00\r\n", 12, 1.5]]) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\x00\r\n\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    )


def test_answers_of_every_resp2_type_are_parsed() -> None:
    data = b"*5\r\n:1\r\n$3\r\na\r\n\r\n$-1\r\n+OK\r\n*1\r\n:-7\r\n"
    assert parse_answer(data) == ([1, b"a\r\n", None, b"OK", [-7]], len(data))
    error, end = parse_answer(b"-NOSCRIPT No matching script.\r\n:1\r\n")
    assert isinstance(error, NoScriptError)
    assert end == 31
    loading, _ = parse_answer(b"-LOADING Redis is loading\r\n")
    assert isinstance(loading, BusyLoadingError)
    plain, _ = parse_answer(b"-ERR unknown command 'WAITAOF'\r\n")
    assert type(plain) is ResponseError
    assert str(plain) == "unknown command 'WAITAOF'"


@pytest.mark.parametrize("cut", [0, 1, 4, 9, 12])
def test_a_cut_answer_asks_for_more(cut: int) -> None:
    data = b"*2\r\n$3\r\nabc\r\n:5\r\n"
    with pytest.raises(_Incomplete):
        parse_answer(data[:cut])


@pytest.mark.parametrize(
    ("garbage", "says"),
    [
        (b"?what\r\n", "unknown type"),
        (b"$x\r\n", "malformed length"),
        (b"*1\r\n" * (MAX_DEPTH + 2) + b":1\r\n", "nested too deep"),
    ],
)
def test_garbage_is_refused_with_a_clear_error(garbage: bytes, says: str) -> None:
    with pytest.raises(StoreUnavailable, match=says):
        parse_answer(garbage)


def test_only_plain_servers_get_a_wire() -> None:
    assert Wire.from_url("redis://127.0.0.1:6379/0", 1.0) is not None
    assert Wire.from_url("unix:///tmp/redis.sock?db=2", 1.0) is not None
    assert Wire.from_url("rediss://127.0.0.1:6379/0", 1.0) is None
    assert Wire.from_url("redis+cluster://127.0.0.1:7000/0", 1.0) is None
    assert Wire.from_url("redis://127.0.0.1:6379/0?protocol=3", 1.0) is None


# -- against a real server ---------------------------------------------------------------


async def test_commands_go_out_together_and_errors_come_back_in_place(redis_url: str) -> None:
    wire = _wire(redis_url)
    try:
        answers = await wire.execute(
            [["SET", "k", b"\xff\x00"], ["NO-SUCH-COMMAND"], ["GET", "k"], ["GET", "none"]]
        )
        assert answers[0] == b"OK"
        assert isinstance(answers[1], ResponseError)
        assert answers[2:] == [b"\xff\x00", None]
    finally:
        wire.close()


async def test_concurrent_requests_each_get_their_own_answers(redis_url: str) -> None:
    """Requests side by side take connections of their own (never two requests' answers
    on one connection), and only a few idle connections are kept afterwards."""
    wire = _wire(redis_url)
    answers: dict[int, list[object]] = {}

    async def one(n: int) -> None:
        answers[n] = await wire.execute([["SET", f"k{n}", n], ["GET", f"k{n}"]])

    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for n in range(MAX_CONNECTIONS * 2):
                    nursery.start_soon(one, n)
        assert answers == {n: [b"OK", b"%d" % n] for n in range(MAX_CONNECTIONS * 2)}
        assert 1 <= len(wire._idle) <= IDLE_KEPT
    finally:
        wire.close()


async def test_an_idle_connection_the_server_closed_is_replaced(redis_url: str) -> None:
    wire = _wire(redis_url)
    client = open_redis(redis_url)
    try:
        assert await wire.execute([["CLIENT", "SETNAME", "wire-test"]]) == [b"OK"]
        assert client.client_kill_filter(skipme=True, _type="normal") >= 1  # type: ignore[no-untyped-call]
        # Redis has closed the pooled connection; the command goes out on a new one.
        assert await wire.execute([["PING"]]) == [b"PONG"]
    finally:
        client.close()
        wire.close()


async def test_a_server_that_never_answers_times_out_and_the_connection_is_dropped() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        wire = _wire(f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
        with trio.fail_after(5), pytest.raises(StoreUnavailable, match="did not answer"):
            await wire.execute([["PING"]])
        assert wire._idle == []  # never reused: its late answer would belong to this PING
        wire.close()


async def test_no_server_is_store_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed at once: nobody listens there
    wire = _wire(f"redis://127.0.0.1:{port}/0")
    with trio.fail_after(5), pytest.raises(StoreUnavailable):
        await wire.execute([["PING"]])


async def test_a_cancelled_request_never_leaves_its_connection_for_the_next() -> None:
    """A request cut after it was sent must not hand its late answer to another one."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        wire = _wire(f"redis://127.0.0.1:{port}/0")
        with trio.move_on_after(0.2) as cut:
            await wire.execute([["PING"]])
        assert cut.cancelled_caught
        assert wire._idle == []
        wire.close()


# -- the store's calls on the wire -------------------------------------------------------


@pytest.fixture
def wired_store(redis_url: str) -> Iterator[RedisStore]:
    """A store on the session's Redis that sends from the event loop (a cluster does not)."""
    store = RedisStore(redis_url)
    try:
        if store._wire is None:
            pytest.skip("a cluster keeps the thread path")
        yield store
    finally:
        store.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client, to look at and change what Redis holds."""
    client = open_redis(redis_url)
    try:
        yield client
    finally:
        client.close()


async def test_the_append_from_the_event_loop_writes_fenced_and_reloads_lost_scripts(
    wired_store: RedisStore, client: redis.Redis
) -> None:
    store = wired_store
    shoot = await store.call(store.create_shoot, _shoot)
    owner = await store.call(store.acquire_lease, shoot, "test", 60_000)
    assert isinstance(owner, Owner)
    # The first append learns what Redis promises, on a worker thread.
    assert (await store.append_now(shoot, owner, [b"a"]))[1] == 1
    assert store.durability is not None
    client.script_flush()  # a restarted Redis: the script is loaded again
    assert (await store.append_now(shoot, owner, [b"b", b"c"]))[1] == 3
    stored = await store.call(store.load_shoot, shoot.code)
    assert stored is not None
    assert [u for _, u in stored.log] == [b"a", b"b", b"c"]  # each written once

    deposed = Owner(owner.epoch - 1, "an older actor")
    with pytest.raises(ShootFenced) as fenced:
        await store.append_now(shoot, deposed, [b"late"])
    assert fenced.value.reason == "deposed"
    stored = await store.call(store.load_shoot, shoot.code)
    assert stored is not None
    assert [u for _, u in stored.log] == [b"a", b"b", b"c"]
    client.delete(f"shoot:{{{shoot.code}}}:meta")  # the shoot ended
    with pytest.raises(ShootFenced):
        await store.append_now(shoot, owner, [b"later"])
    assert client.xlen(f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:log") == 3


async def test_leases_are_renewed_from_the_event_loop_each_answer_its_own(
    wired_store: RedisStore, client: redis.Redis
) -> None:
    """The relay's renewal of every lease it holds, on the wire: the answers are those of
    the thread path (a deposed owner's lease is not ours; a lost script is loaded again)."""
    store = wired_store
    shoot = await store.call(store.create_shoot, _shoot)
    other = await store.call(store.create_shoot, _shoot)
    old = await store.call(store.acquire_lease, shoot, "a", 100)
    assert isinstance(old, Owner)
    with trio.fail_after(10):
        while client.exists(f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:lease"):
            await trio.sleep(0.01)  # polling Redis until the lease lapses (100 ms)
    new = await store.call(store.acquire_lease, shoot, "b", 60_000)
    mine = await store.call(store.acquire_lease, other, "b", 60_000)
    assert isinstance(new, Owner)
    assert isinstance(mine, Owner)
    leases = [(shoot, old), (shoot, new), (other, mine)]
    with trio.fail_after(10):
        assert await store.renew_leases_now(leases, 60_000) == [False, True, True]
        client.script_flush()  # a restarted Redis: the script is loaded again
        assert await store.renew_leases_now(leases, 60_000) == [False, True, True]
    assert await store.call(store.renew_leases, leases, 60_000) == [False, True, True]
    assert 59_000 < client.pttl(f"shoot:{{{other.code}}}:{other.shoot_id}:lease") <= 60_000


async def test_the_append_from_the_event_loop_asks_for_the_fsync(
    wired_store: RedisStore,
) -> None:
    """As on the thread path: ``WAITAOF`` follows the append on its connection; a Redis
    that refuses it (7.0 here) keeps the append, and the store stops asking."""
    store = wired_store
    shoot = await store.call(store.create_shoot, _shoot)
    owner = await store.call(store.acquire_lease, shoot, "test", 60_000)
    assert isinstance(owner, Owner)
    real = await store.call(store.detect_durability)
    store.durability = Durability("7.2.4", True, "always", True)
    assert (await store.append_now(shoot, owner, [b"a"]))[1] == 1
    assert store.durability.waitaof is (parse_version(real.version) >= (7, 2))
    assert (await store.append_now(shoot, owner, [b"b"]))[1] == 2


async def test_a_password_and_a_database_in_the_url_are_used(own_redis: RedisServer) -> None:
    password = "pw-" + uuid.uuid4().hex  # made up at run time
    client = open_redis(own_redis.url)
    client.config_set("requirepass", password)
    client.close()
    base = f"127.0.0.1:{own_redis.port}"
    # Joined at run time, so no committed line holds a credential-shaped URL.
    wire = _wire("redis://" + f":{password}@{base}/3")
    wrong = _wire("redis://" + f":{password}-not@{base}/3")
    checker = redis.Redis(host="127.0.0.1", port=own_redis.port, password=password, db=3)
    try:
        assert await wire.execute([["SET", "k", "in db 3"]]) == [b"OK"]
        assert checker.get("k") == b"in db 3"
        with trio.fail_after(5), pytest.raises(StoreUnavailable, match="refused"):
            await wrong.execute([["PING"]])
    finally:
        checker.close()
        wire.close()
        wrong.close()


async def test_a_restarted_redis_is_reached_again(own_redis: RedisServer) -> None:
    """Down: a clear error (the persister retries); back: a new connection, no stale one."""
    wire = _wire(own_redis.url)
    try:
        assert await wire.execute([["PING"]]) == [b"PONG"]
        await trio.to_thread.run_sync(own_redis.stop)
        with trio.fail_after(5), pytest.raises(StoreUnavailable):
            await wire.execute([["PING"]])
        await trio.to_thread.run_sync(own_redis.start)
        assert await wire.execute([["PING"]]) == [b"PONG"]
    finally:
        wire.close()
