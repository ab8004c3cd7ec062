import assert from "node:assert/strict";
import { test } from "node:test";
import * as Y from "yjs";
import { Replica } from "../src/protocol/replica";

function writer(): { doc: Y.Doc; updates: Uint8Array[] } {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => updates.push(u));
  return { doc, updates };
}

function setArcher(doc: Y.Doc, id: string, arrows: (number | string)[], stamp: [number, number, string]): void {
  doc.transact(() => {
    const archers = doc.getMap("archers");
    const m = new Y.Map<unknown>();
    archers.set(id, m);
    for (const [k, v] of Object.entries({ name: id, round: "national", bowstyle: "recurve", age_group: "adult", gender: "open", finished: false, left: false, stamp })) m.set(k, v);
    m.set("arrows", Y.Array.from(arrows));
    m.set("derived", [48, 513, "B3", "on_track"]);
  });
}

test("updates apply in order and archers read back with derived values", () => {
  const w = writer();
  setArcher(w.doc, "a1", [9, "X", "M"], [1795734657377, 0, "p"]);
  const replica = new Replica();
  replica.applyWelcome(false, w.updates[0]!);
  const a1 = replica.archers().get("a1")!;
  assert.deepEqual(a1.state.arrows, [9, "X", "M"]);
  assert.deepEqual(a1.stamp, [1795734657377, 0, "p"]);
  assert.deepEqual(a1.derived, { handicap: 48, predicted: 513, classification: "B3", status: "on_track" });
});

test("an empty update is skipped (Yjs would throw)", () => {
  const replica = new Replica();
  replica.applyUpdate(new Uint8Array(0));
  replica.applyWelcome(false, new Uint8Array(0));
  assert.equal(replica.archers().size, 0);
});

test("reset: a replica holding items the relay lost starts over from the full state", () => {
  // The relay crashed after fanning out a2's update but before Redis had it.
  const lost = writer();
  setArcher(lost.doc, "a2", [5], [2, 0, "p"]);
  const relay = writer();
  setArcher(relay.doc, "a1", [9], [1, 0, "p"]);
  const replica = new Replica();
  replica.applyUpdate(lost.updates[0]!);
  replica.applyUpdate(relay.updates[0]!);
  assert.deepEqual([...replica.archers().keys()].sort(), ["a1", "a2"]);
  replica.applyWelcome(true, Y.encodeStateAsUpdate(relay.doc));
  assert.deepEqual([...replica.archers().keys()], ["a1"]);
  assert.equal(replica.resets, 1);
  // Without reset the diff is merged into what the replica holds.
  const kept = new Replica(replica.snapshot());
  assert.deepEqual([...kept.archers().keys()], ["a1"]);
});
