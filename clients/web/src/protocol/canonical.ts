// The canonical bytes of an archer's state (sync/canonical.py, docs/protocol.md "Stamps and
// the merge"): the register's tie-break when a buggy device reused a stamp. The state's wire
// map encoded as RFC 8949 core deterministic CBOR (section 4.2.1): shortest heads, definite
// lengths, map keys sorted by their encoded bytes. Written out by hand (not cbor-x) so the
// rule is visible and cannot drift with an encoder's options; tests/test_web_canonical.py
// checks it byte for byte against the relay's encoding.
import type { ArcherState } from "./types";

type Canon = number | string | boolean | null | Canon[] | { [key: string]: Canon };

const utf8 = new TextEncoder();

function head(major: number, n: number, out: number[]): void {
  const m = major << 5;
  if (n < 24) out.push(m | n);
  else if (n < 0x100) out.push(m | 24, n);
  else if (n < 0x10000) out.push(m | 25, n >> 8, n & 0xff);
  else if (n < 0x100000000) out.push(m | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  else throw new RangeError("canonical: integer beyond 32 bits");
}

function encodeInto(value: Canon, out: number[]): void {
  if (value === null) out.push(0xf6);
  else if (value === false) out.push(0xf4);
  else if (value === true) out.push(0xf5);
  else if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new RangeError("canonical: only integers");
    if (value >= 0) head(0, value, out);
    else head(1, -1 - value, out);
  } else if (typeof value === "string") {
    const bytes = utf8.encode(value);
    head(3, bytes.length, out);
    for (const b of bytes) out.push(b);
  } else if (Array.isArray(value)) {
    head(4, value.length, out);
    for (const item of value) encodeInto(item, out);
  } else {
    const entries = Object.entries(value).map(([k, v]) => {
      const key: number[] = [];
      encodeInto(k, key);
      return { key, v };
    });
    entries.sort((a, b) => compareBytes(a.key, b.key));
    head(5, entries.length, out);
    for (const { key, v } of entries) {
      for (const b of key) out.push(b);
      encodeInto(v, out);
    }
  }
}

/** Bytewise order (a shorter prefix first), as Python compares ``bytes``. */
export function compareBytes(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The state's canonical CBOR bytes: exactly the wire map's keys, nothing else. */
export function canonicalState(state: ArcherState): Uint8Array {
  const wire: Canon = {
    name: state.name,
    round: state.round,
    profile: { bowstyle: state.profile.bowstyle, age_group: state.profile.age_group, gender: state.profile.gender },
    arrows: [...state.arrows],
    finished: state.finished,
    left: state.left,
  };
  const out: number[] = [];
  encodeInto(wire, out);
  return Uint8Array.from(out);
}
