import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeFrame, encodeFrame } from "../src/protocol/codec";
import { helloFrame, pingFrame, readServerFrame, writeFrame } from "../src/protocol/messages";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("a ping is byte for byte the protocol doc's example", () => {
  assert.equal(hex(encodeFrame({ v: 1, type: "ping", nonce: 7 })), "a361760164747970656470696e67656e6f6e636507");
});

test("large integers are CBOR integers, never floats", () => {
  // 2^53-1 as a uint64 (0x1b), and a ms timestamp as well; a float would be 0xfb.
  assert.equal(hex(pingFrame(2 ** 53 - 1)).slice(-18), "1b001fffffffffffff");
  const frame = writeFrame(1, { archer: "a1", stamp: [1795734657377, 0, "phone"], state: { name: "C", round: "national", profile: { bowstyle: "recurve", age_group: "adult", gender: "open" }, arrows: [9, "X", "M"], finished: false, left: false } });
  assert.ok(hex(frame).includes("1b000001a2"));
  assert.ok(!hex(frame).includes("fb"));
  const back = decodeFrame(frame) as { register: { stamp: unknown[] } };
  assert.deepEqual(back.register.stamp, [1795734657377, 0, "phone"]); // numbers, not BigInt
});

test("byte strings carry no tag", () => {
  const frame = helloFrame({ shoot: "1234", role: "viewer", sv: new Uint8Array([0]) });
  assert.ok(hex(frame).includes("62737641" + "00")); // "sv": h'00'
  assert.ok(!hex(frame).includes("d840"));
  const back = decodeFrame(frame);
  assert.ok(back.sv instanceof Uint8Array);
});

test("relay frames are checked before use", () => {
  assert.throws(() => readServerFrame(encodeFrame({ v: 2, type: "pong", nonce: 1, server_ms: 1 })), { code: "unsupported_version" });
  assert.throws(() => readServerFrame(encodeFrame({ v: 1, type: "pong", nonce: "1", server_ms: 1 })), { code: "invalid_field" });
  assert.throws(() => readServerFrame(encodeFrame({ v: 1, type: "party" })), { code: "unknown_type" });
  assert.throws(() => readServerFrame(new Uint8Array([0xff, 0x00])), { code: "malformed" });
  assert.throws(() => readServerFrame(new Uint8Array(8 * 1024 * 1024 + 1)), { code: "frame_too_large" });
  const ack = readServerFrame(encodeFrame({ v: 1, type: "ack", id: 3, archer: "a1", stamp: [1795734657377, 2, "d"] }));
  assert.deepEqual(ack, { type: "ack", id: 3, archer: "a1", stamp: [1795734657377, 2, "d"] });
});
