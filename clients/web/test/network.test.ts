// The window's `offline` event drops the socket at once (a frozen socket would otherwise
// hold writes for minutes); `online` reconnects at once, whatever the backoff says.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { test } from "node:test";
import * as Y from "yjs";
import { openShoot } from "../src/protocol/session";
import type { Stamp } from "../src/protocol/types";
import { SHOOT, docWith, fakeRelay, until } from "./fake-relay";

// Node's global object is no EventTarget; give it the two methods a window has.
const windowEvents = new EventTarget();
Object.assign(globalThis, {
  addEventListener: windowEvents.addEventListener.bind(windowEvents),
  removeEventListener: windowEvents.removeEventListener.bind(windowEvents),
});

test("offline drops the socket; online reconnects at once and resends", async () => {
  let online = true;
  const writes: Stamp[] = [];
  const relay = fakeRelay((msg) => {
    if (!online) return []; // frames into a dead network vanish, and no close comes
    if (msg.type === "hello") return [{ type: "welcome", shoot: SHOOT, reset: false, update: Y.encodeStateAsUpdate(docWith([], [1, 0, "join"])), server_ms: Date.now(), role: "archer", archer: "a1" }];
    if (msg.type !== "write") return [];
    const register = msg.register as { archer: string; stamp: Stamp };
    writes.push(register.stamp);
    return [{ type: "ack", id: msg.id, archer: register.archer, stamp: register.stamp }];
  });
  const identity = { code: "4821", archerId: "a1", token: "t".repeat(20) };
  // A backoff of a minute: only the `online` event can bring the client back in time.
  const timings = { backoffBaseMs: 60_000, backoffCapMs: 60_000 };
  const client = await openShoot({ origin: "http://relay.invalid", code: "4821", identity, deviceId: "net", webSocket: relay.socket, timings, random: () => 1 });
  try {
    await until("online", () => client.status().connection === "online");
    online = false;
    windowEvents.dispatchEvent(new Event("offline"));
    assert.equal(client.status().connection, "offline");
    await client.write({ ...client.myState()!, arrows: [9, 9, 7] });
    assert.equal(client.status().pending, 1);
    online = true;
    windowEvents.dispatchEvent(new Event("online"));
    await until("the ack", () => client.status().pending === 0, 2000);
    assert.equal(relay.sockets(), 2);
    assert.equal(writes.length, 1);
  } finally {
    client.close();
  }
});
