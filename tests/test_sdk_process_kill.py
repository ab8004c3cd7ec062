"""A client process killed (SIGKILL) with unacknowledged writes loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import trio

from clients import Identity, connect, create_shoot
from tests.sdk_fixtures import FAST, RelayHandle, new_archer, relay  # noqa: F401

CHILD = """
import json, sys, trio
from pathlib import Path
from clients import ClientOptions, Identity, connect

async def main() -> None:
    me = Identity.from_json(json.loads(sys.argv[1]))
    options = ClientOptions(backoff_base_s=0.05, backoff_cap_s=0.2)
    async with connect(me.relay_url, me.code, identity=me, outbox_path=Path(sys.argv[2]), options=options) as c:
        await c.score_end([9, 9, 7, 7, 5, 5])
        await c.score_end([9, 7, 7, 5, 3, "M"])
        print("QUEUED", len(c.pending), flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


async def test_killed_client_process_resumes_every_unacked_write(
    relay: RelayHandle,  # noqa: F811
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        me: Identity = await new_archer(url, shoot.code)
        await relay.stop()  # the range has no signal
        outbox = tmp_path / "outbox.json"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(me.to_json()), str(outbox)],
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            line = await trio.to_thread.run_sync(child.stdout.readline)
            assert line.split() == [b"QUEUED", b"1"]
        finally:
            child.send_signal(signal.SIGKILL)
            await trio.to_thread.run_sync(child.wait)
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL

        await relay.start()
        async with (
            connect(url, shoot.code, identity=me, outbox_path=outbox, options=FAST) as again,
            connect(url, shoot.code, options=FAST) as viewer,
        ):
            assert len(again.pending) == 1
            await again.wait_synced()
            await viewer.wait_until(
                lambda v: (r := v.register(me.archer_id)) is not None and len(r.state.arrows) == 12
            )
            arrows = viewer.register(me.archer_id).state.arrows  # type: ignore[union-attr]
            assert arrows == (9, 9, 7, 7, 5, 5, 9, 7, 7, 5, 3, "M")
