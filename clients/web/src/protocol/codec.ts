// CBOR frames as the relay's codec (sync/codec.py) reads and writes them.
//
// cbor-x needs four settings to speak the relay's dialect (checked against sync.codec):
//   useRecords: false, mapsAsObjects: true  plain maps with text keys, no record tags
//   tagUint8Array: false                    Uint8Array as a bare byte string (major type 2)
//   variableMapSize: true                   the smallest map header, as in docs/protocol.md
//   int64AsNumber: true                     uint64 stamps/ms decode as numbers, not BigInt
// cbor-x writes any integer outside -2^32..2^32-1 as a float64, which the relay refuses
// ("integers are CBOR integers"), so such integers are handed to it as BigInt.
import { Encoder } from "cbor-x";

/** Largest frame accepted from the relay (docs/protocol.md, Limits). */
export const MAX_SERVER_FRAME_BYTES = 8 * 1024 * 1024;
/** Largest frame the relay accepts from a client. */
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;

// int64AsNumber is a decoder option cbor-x's typings do not list.
const settings = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false, int64AsNumber: true };
const cbor = new Encoder(settings as ConstructorParameters<typeof Encoder>[0]);

const SMALL = 0xffffffff;

function wireInts(value: unknown): unknown {
  if (typeof value === "number") {
    return Number.isInteger(value) && (value > SMALL || value < -SMALL - 1) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map(wireInts);
  if (value instanceof Uint8Array) return value;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = wireInts(item);
    return out;
  }
  return value;
}

export class FrameError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "FrameError";
  }
}

/** One message as the bytes of one binary WebSocket frame. */
export function encodeFrame(message: Record<string, unknown>): Uint8Array<ArrayBuffer> {
  // A copy: cbor-x may hand out a view of a buffer it reuses for the next frame.
  return new Uint8Array(cbor.encode(wireInts(message)) as Uint8Array);
}

/** The CBOR map in a relay frame; checked for size before parsing. */
export function decodeFrame(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength > MAX_SERVER_FRAME_BYTES) {
    throw new FrameError("frame_too_large", "The relay sent a frame over the size limit.");
  }
  let value: unknown;
  try {
    value = cbor.decode(bytes);
  } catch {
    throw new FrameError("malformed", "The relay sent a frame that is not CBOR.");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    throw new FrameError("malformed", "The relay sent a frame that is not a map.");
  }
  return value as Record<string, unknown>;
}
