import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { test } from "node:test";
import { resetDbForTests } from "../src/protocol/idb";
import type { WireRegister } from "../src/protocol/messages";
import { Outbox, OutboxStore } from "../src/protocol/outbox";
import type { Stamp } from "../src/protocol/types";

const reg = (stamp: Stamp, arrows: number[] = []): WireRegister => ({
  archer: "a1",
  stamp,
  state: { name: "C", round: "national", profile: { bowstyle: "recurve", age_group: "adult", gender: "open" }, arrows, finished: false, left: false },
});

test("only the newest pending write per archer is kept", () => {
  const outbox = new Outbox();
  assert.ok(outbox.put(reg([2, 0, "d"], [9])));
  assert.ok(!outbox.put(reg([1, 0, "d"], [])));
  assert.ok(outbox.put(reg([3, 0, "d"], [9, 7])));
  assert.equal(outbox.size, 1);
  assert.deepEqual(outbox.get("a1")?.stamp, [3, 0, "d"]);
});

test("an ack drops the write only when it names its stamp", () => {
  const outbox = new Outbox();
  outbox.put(reg([3, 0, "d"], [9, 7]));
  assert.equal(outbox.acknowledge("a1", [2, 0, "d"]), null);
  assert.equal(outbox.size, 1);
  assert.ok(outbox.acknowledge("a1", [3, 0, "d"]));
  assert.equal(outbox.size, 0);
  assert.deepEqual(outbox.seen("a1")?.state.arrows, [9, 7]);
});

test("a superseding winner drops the pending write only if at least as new", () => {
  const outbox = new Outbox();
  outbox.put(reg([5, 0, "phone"], [9]));
  assert.equal(outbox.adopt(reg([4, 0, "tablet"], [1])), null);
  assert.equal(outbox.size, 1);
  const dropped = outbox.adopt(reg([6, 0, "tablet"], [1, 1]));
  assert.deepEqual(dropped?.state.arrows, [9]);
  assert.equal(outbox.size, 0);
  assert.deepEqual(outbox.seen("a1")?.stamp, [6, 0, "tablet"]);
});

test("the outbox survives a reload (IndexedDB) with its clock", async () => {
  const store = new OutboxStore("4821");
  const outbox = await store.load();
  outbox.put(reg([7, 1, "d"], [9, 9, 7]));
  outbox.clock = [7, 1, "d"];
  outbox.shootId = "s1";
  const first = store.save(outbox);
  outbox.put(reg([8, 0, "d"], [9, 9, 7, 5])); // a second save queued behind the first
  await Promise.all([first, store.save(outbox)]);
  resetDbForTests(); // as a new page would: a fresh connection to the database
  const again = await new OutboxStore("4821").load();
  assert.deepEqual(again.get("a1")?.state.arrows, [9, 9, 7, 5]);
  assert.deepEqual(again.clock, [7, 1, "d"]);
  assert.equal(again.shootId, "s1");
  assert.equal((await new OutboxStore("9999").load()).size, 0);
});
