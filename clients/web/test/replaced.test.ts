import assert from "node:assert/strict";
import { test } from "node:test";
import type { ArcherState } from "../src/protocol/types";
import { lostEnds } from "../src/views/status";

// The archer page words a replaced write end by end, as the CLI does (clients/_replaced.py).
const state = (arrows: ArcherState["arrows"], round = "national"): ArcherState => ({
  name: "Chris",
  round,
  profile: { bowstyle: "recurve", age_group: "adult", gender: "open" },
  arrows,
  finished: false,
  left: false,
});

test("each end of mine the winner does not have as it was is named", () => {
  const mine = state([9, 9, 7, 5, 3, 1, 9, 9, 9, 9, 9, 9]);
  const winner = state([9, 9, 7, 5, 3, 1, 7, 7, 7, 7, 7, 7]);
  assert.deepEqual(lostEnds(mine, winner, null), [
    "Your end 2 (9 9 9 9 9 9) from this device was replaced by a newer write from another device.",
  ]);
});

test("a change with no end of its own lost (a finish, another round) still gets a sentence", () => {
  const mine = { ...state([9, 9, 7, 5, 3, 1]), finished: true };
  assert.deepEqual(lostEnds(mine, state([9, 9, 7, 5, 3, 1]), null), [
    "A change from this device was replaced by a newer write from another device.",
  ]);
  assert.equal(lostEnds(state([9, 9, 7, 5, 3, 1]), state([9, 9, 7, 5, 3, 1], "york"), null).length, 1);
});
