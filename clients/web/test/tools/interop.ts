// Interop with the relay's codec (tests/test_web_interop.py): encode client frames the way
// the browser does, and decode relay frames the way the browser does.
//   stdin: {"encode": [{"type": "hello", ...}, ...], "decode": ["<hex>", ...]}
//   stdout: {"encoded": ["<hex>", ...], "decoded": [message | {"error": code}, ...]}
import { FrameError } from "../../src/protocol/codec";
import { helloFrame, pingFrame, readServerFrame, writeFrame } from "../../src/protocol/messages";
import { readJson, writeJson } from "./stdio";

type Spec =
  | { type: "hello"; shoot: string; role: "archer" | "viewer"; sv: string; archer?: string | null; token?: string | null }
  | { type: "write"; id: number; register: Parameters<typeof writeFrame>[1] }
  | { type: "ping"; nonce: number };

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const input = (await readJson()) as { encode: Spec[]; decode: string[] };
const encoded = input.encode.map((spec) => {
  switch (spec.type) {
    case "hello":
      return hex(helloFrame({ ...spec, sv: new Uint8Array(Buffer.from(spec.sv, "hex")) }));
    case "write":
      return hex(writeFrame(spec.id, spec.register));
    case "ping":
      return hex(pingFrame(spec.nonce));
  }
});
const decoded = input.decode.map((frame) => {
  try {
    return readServerFrame(new Uint8Array(Buffer.from(frame, "hex")));
  } catch (error) {
    return { error: error instanceof FrameError ? error.code : String(error) };
  }
});
writeJson({ encoded, decoded });
