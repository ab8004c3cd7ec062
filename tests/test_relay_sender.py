"""A session starts its sender task only when a frame has to wait (real relay, real
WebSockets): most connections never need one, and each costs the relay a task to spawn,
schedule and cancel, thousands at once in a reconnect storm."""

from __future__ import annotations

import httpx
import trio

from sync.protocol import Ack, Welcome
from tests.wire import create_shoot, join, peer, register


def _sender_tasks() -> int:
    """The session sender tasks running in this trio run (the relay is in-process)."""
    count = 0
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        count += task.name.endswith("._send_loop")
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


async def test_sessions_whose_frames_go_straight_out_have_no_sender_task(relay_url: str) -> None:
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
        async with (
            peer(relay_url, code, archer=chris, token=token) as archer,
            peer(relay_url, code) as viewer,
        ):
            await archer.expect(Welcome)
            await viewer.expect(Welcome)
            for n in range(1, 6):
                await archer.write(n, register(chris, (9,) * n))
                assert (await archer.expect(Ack)).id == n
            assert _sender_tasks() == 0
