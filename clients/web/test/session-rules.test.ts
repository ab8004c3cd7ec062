// The session's answers to each relay decision, against a scripted relay in memory (the
// real relay is in session.test.ts): clock_skew, rate_limited, reset, and resending on
// reconnect with the same stamp.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { test } from "node:test";
import * as Y from "yjs";
import { type Session, openShoot } from "../src/protocol/session";
import type { ArcherState, Stamp } from "../src/protocol/types";
import { type Frame, SHOOT, docWith, fakeRelay, until } from "./fake-relay";

const fast = { pingIntervalMs: 5_000, pongTimeoutMs: 5_000, tickMs: 50, backoffBaseMs: 10, backoffCapMs: 20, resendAfterMs: 5_000 };
const me = { code: "4821", archerId: "a1", token: "t".repeat(20) };


const welcome = (doc: Y.Doc, reset = false): Frame => ({ type: "welcome", shoot: SHOOT, reset, update: Y.encodeStateAsUpdate(doc), server_ms: Date.now(), role: "archer", archer: "a1" });
const more = (state: ArcherState, arrows: ArcherState["arrows"]): ArcherState => ({ ...state, arrows: [...state.arrows, ...arrows] });

test("clock_skew: the clock takes the relay's time and the same state is re-stamped", async () => {
  const serverNow = () => Date.now();
  const writes: Stamp[] = [];
  const relay = fakeRelay((msg) => {
    if (msg.type === "hello") return [welcome(docWith([], [1, 0, "join"]))];
    if (msg.type !== "write") return [];
    const register = msg.register as { archer: string; stamp: Stamp };
    writes.push(register.stamp);
    if (register.stamp[0] > serverNow() + 300_000) return [{ type: "error", code: "clock_skew", message: "ahead", id: msg.id, fatal: false, server_ms: serverNow() }];
    return [{ type: "ack", id: msg.id, archer: register.archer, stamp: register.stamp }];
  });
  const ahead = () => Date.now() + 3_600_000; // an hour fast
  const client = (await openShoot({ origin: "http://relay.invalid", code: "4821", identity: me, deviceId: "skewed", timings: fast, webSocket: relay.socket, wallClock: ahead, watchNetwork: false })) as Session;
  try {
    await until("welcome", () => client.myState() !== null);
    await client.write(more(client.myState()!, [9, 9, 7, 7, 5, 5]));
    await until("the ack", () => client.status().pending === 0);
    assert.equal(writes.length, 2);
    assert.ok(writes[0]![0] > Date.now() + 3_000_000);
    assert.ok(Math.abs(writes[1]![0] - Date.now()) < 60_000); // re-stamped on the relay's time
    await client.write(more(client.myState()!, [1]));
    await until("the second ack", () => client.status().pending === 0);
    assert.equal(writes.length, 3); // the correction stuck: no second refusal
    assert.deepEqual(client.myState()?.arrows, [9, 9, 7, 7, 5, 5, 1]);
    // The shoot is named in the URL too, so a relay with several workers routes it.
    assert.deepEqual(relay.urls, ["ws://relay.invalid/ws?code=4821"]);
  } finally {
    client.close();
  }
});

test("rate_limited: the write is kept and sent again once a token is back", async () => {
  let refused = 0;
  const relay = fakeRelay((msg) => {
    if (msg.type === "hello") return [welcome(docWith([], [1, 0, "join"]))];
    if (msg.type !== "write") return [];
    const register = msg.register as { archer: string; stamp: Stamp };
    if (refused++ === 0) return [{ type: "error", code: "rate_limited", message: "slow down", id: msg.id, fatal: false }];
    return [{ type: "ack", id: msg.id, archer: register.archer, stamp: register.stamp }];
  });
  const client = await openShoot({ origin: "http://relay.invalid", code: "4821", identity: me, deviceId: "busy", timings: fast, webSocket: relay.socket, watchNetwork: false });
  try {
    await until("welcome", () => client.myState() !== null);
    const started = performance.now();
    await client.write(more(client.myState()!, [9]));
    await until("the ack", () => client.status().pending === 0);
    assert.equal(refused, 2);
    assert.ok(performance.now() - started >= 90); // waited for a token (10 per second)
    assert.equal(client.status().lastError, null);
  } finally {
    client.close();
  }
});

test("reset: the replica starts over from the full state and pending writes are resent", async () => {
  const lost = docWith([9, 9, 9, 9, 9, 9], [5, 0, "ghost"]); // a write the relay never persisted
  const kept = docWith([], [1, 0, "join"]);
  const stamps: Stamp[] = [];
  const relay = fakeRelay((msg, socket) => {
    if (msg.type === "hello") return socket === 1 ? [welcome(lost)] : [welcome(kept, true)];
    if (msg.type !== "write") return [];
    const register = msg.register as { archer: string; stamp: Stamp };
    stamps.push(register.stamp);
    if (socket === 1) return "close"; // the relay crashes before answering
    return [{ type: "ack", id: msg.id, archer: register.archer, stamp: register.stamp }];
  });
  // A code of its own: the replica saved by the other tests would merge with this one.
  const client = (await openShoot({ origin: "http://relay.invalid", code: "4822", identity: { ...me, code: "4822" }, deviceId: "reset", timings: fast, webSocket: relay.socket, watchNetwork: false })) as Session;
  try {
    await until("the first welcome", () => client.myState()?.arrows.length === 6);
    await client.write(more(client.myState()!, [7]));
    await until("the ack after the reset", () => client.status().pending === 0);
    assert.equal(client.resets, 1);
    assert.equal(relay.sockets(), 2);
    assert.equal(stamps.length, 2);
    assert.deepEqual(stamps[0], stamps[1]); // the same write, the same stamp
    assert.deepEqual(client.myState()?.arrows, [9, 9, 9, 9, 9, 9, 7]); // mine, now acked
  } finally {
    client.close();
  }
});
