// Without IndexedDB (a private window, say) the client still scores, online, with writes
// kept in memory, and says what that risks. This file loads no fake IndexedDB.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as Y from "yjs";
import { openShoot } from "../src/protocol/session";
import type { Stamp } from "../src/protocol/types";
import { SHOOT, docWith, fakeRelay, until } from "./fake-relay";

test("no IndexedDB: writes are kept in memory and the user is told", async () => {
  assert.equal(typeof (globalThis as { indexedDB?: unknown }).indexedDB, "undefined");
  const relay = fakeRelay((msg) => {
    if (msg.type === "hello") return [{ type: "welcome", shoot: SHOOT, reset: false, update: Y.encodeStateAsUpdate(docWith([], [1, 0, "join"])), server_ms: Date.now(), role: "archer", archer: "a1" }];
    if (msg.type !== "write") return [];
    const register = msg.register as { archer: string; stamp: Stamp };
    return [{ type: "ack", id: msg.id, archer: register.archer, stamp: register.stamp }];
  });
  const identity = { code: "4821", archerId: "a1", token: "t".repeat(20) };
  const client = await openShoot({ origin: "http://relay.invalid", code: "4821", identity, webSocket: relay.socket, watchNetwork: false });
  try {
    await until("welcome", () => client.myState() !== null);
    await client.write({ ...client.myState()!, arrows: [9, 9, 7] });
    await until("the ack", () => client.status().pending === 0);
    assert.deepEqual(client.myState()?.arrows, [9, 9, 7]);
    assert.equal(client.status().lastError?.code, "storage");
  } finally {
    client.close();
  }
});
