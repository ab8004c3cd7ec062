import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalState, compareBytes } from "../src/protocol/canonical";
import { compareRegisters } from "../src/protocol/outbox";
import type { ArcherState } from "../src/protocol/types";
import fixtures from "./fixtures/canonical.json";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const states = fixtures.states as { state: ArcherState; canonical: string }[];

test("canonical bytes equal the relay's for every shared fixture", () => {
  for (const { state, canonical } of states) assert.equal(hex(canonicalState(state)), canonical, state.name);
});

test("key order in the object does not change the bytes", () => {
  const { state } = states[1]!;
  const shuffled = { left: state.left, arrows: state.arrows, finished: state.finished, round: state.round, profile: state.profile, name: state.name };
  assert.equal(hex(canonicalState(shuffled)), states[1]!.canonical);
});

test("equal stamps: the larger canonical bytes win, as in sync.register", () => {
  for (const a of states) {
    for (const b of states) {
      const byJs = compareRegisters({ archer: "a", stamp: [1, 0, "d"], state: a.state }, { archer: "a", stamp: [1, 0, "d"], state: b.state });
      const byPython = compareBytes(Buffer.from(a.canonical, "hex"), Buffer.from(b.canonical, "hex"));
      assert.equal(Math.sign(byJs), Math.sign(byPython));
    }
  }
});
