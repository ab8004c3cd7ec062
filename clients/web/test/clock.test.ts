import assert from "node:assert/strict";
import { test } from "node:test";
import { HybridClock, compareStamps } from "../src/protocol/clock";

test("stamps follow the wall clock and never run backwards", () => {
  const clock = new HybridClock("d1");
  assert.deepEqual(clock.now(1000), [1000, 0, "d1"]);
  assert.deepEqual(clock.now(1000), [1000, 1, "d1"]);
  assert.deepEqual(clock.now(900), [1000, 2, "d1"]); // the wall clock went back
  assert.deepEqual(clock.now(1001), [1001, 0, "d1"]);
});

test("observed stamps are moved past", () => {
  const clock = new HybridClock("d1");
  clock.observe([5000, 3, "other"]);
  assert.deepEqual(clock.now(1000), [5000, 4, "d1"]);
  clock.observe([10, 0, "x"]); // older: ignored
  assert.deepEqual(clock.last, [5000, 4, "d1"]);
});

test("a clock_skew correction adopts the relay's time", () => {
  const clock = new HybridClock("d1");
  clock.now(10_000_000); // far ahead
  clock.correct(10_000_000, 1_000);
  const stamp = clock.now(10_000_000);
  assert.deepEqual(stamp, [1_000, 0, "d1"]); // at the relay's time: the stamp ahead was forgotten
  assert.deepEqual(clock.now(10_000_005), [1_005, 0, "d1"]);
});

test("stamps order by wall, counter, then device id", () => {
  assert.equal(compareStamps([1, 0, "a"], [1, 0, "b"]), -1);
  assert.equal(compareStamps([1, 1, "a"], [1, 0, "b"]), 1);
  assert.equal(compareStamps([2, 0, "a"], [1, 9, "z"]), 1);
  assert.equal(compareStamps([2, 0, "a"], [2, 0, "a"]), 0);
});

test("a correction keeps a stamp observed below a clock that ran ahead", () => {
  const clock = new HybridClock("phone");
  clock.now(10_000_000); // an hour ahead
  clock.observe([1_500, 2, "tablet"]); // the archer's other device, already at the relay
  clock.correct(10_000_000, 1_000);
  assert.deepEqual(clock.now(10_000_000), [1_500, 3, "phone"]); // still beats the tablet
});
