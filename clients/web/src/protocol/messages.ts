// The wire messages (docs/protocol.md), typed, with builders for what the client sends and
// a checking reader for what the relay sends. A relay frame that breaks the protocol is a
// FrameError, never a half-read message.
import { FrameError, decodeFrame, encodeFrame } from "./codec";
import type { Arrow, ArcherState, ShootInfo, Stamp } from "./types";

export const PROTOCOL_VERSION = 1;

export interface WireRegister {
  archer: string;
  stamp: Stamp;
  state: ArcherState;
}

export type ServerMessage =
  | { type: "welcome"; shoot: ShootInfo; reset: boolean; update: Uint8Array; serverMs: number; role: string; archer: string | null }
  | { type: "update"; update: Uint8Array }
  | { type: "ack"; id: number; archer: string; stamp: Stamp }
  | { type: "superseded"; id: number; winner: WireRegister }
  | { type: "error"; code: string; message: string; id: number | null; fatal: boolean; serverMs: number | null }
  | { type: "notice"; kind: string; round: string; archer: string | null; text: string; ends: number | null }
  | { type: "pong"; nonce: number; serverMs: number };

// -- client -> relay ---------------------------------------------------------------------

export function helloFrame(hello: { shoot: string; role: "archer" | "viewer"; sv: Uint8Array; archer?: string | null; token?: string | null }): Uint8Array<ArrayBuffer> {
  return encodeFrame({ v: PROTOCOL_VERSION, type: "hello", shoot: hello.shoot, role: hello.role, sv: hello.sv, archer: hello.archer ?? null, token: hello.token ?? null });
}

export function writeFrame(id: number, register: WireRegister): Uint8Array<ArrayBuffer> {
  return encodeFrame({ v: PROTOCOL_VERSION, type: "write", id, register: registerToWire(register) });
}

export function pingFrame(nonce: number): Uint8Array<ArrayBuffer> {
  return encodeFrame({ v: PROTOCOL_VERSION, type: "ping", nonce });
}

/** The register with exactly the wire's keys, in the order sync.codec writes them. */
export function registerToWire(register: WireRegister): Record<string, unknown> {
  const s = register.state;
  return {
    archer: register.archer,
    stamp: [register.stamp[0], register.stamp[1], register.stamp[2]],
    state: {
      name: s.name,
      round: s.round,
      profile: { bowstyle: s.profile.bowstyle, age_group: s.profile.age_group, gender: s.profile.gender },
      arrows: [...s.arrows],
      finished: s.finished,
      left: s.left,
    },
  };
}

// -- relay -> client ---------------------------------------------------------------------

function fail(field: string, what: string): never {
  throw new FrameError("invalid_field", `Field '${field}' ${what}.`);
}

function str(m: Record<string, unknown>, key: string, path = key): string {
  const v = m[key];
  if (typeof v !== "string") fail(path, "must be text");
  return v;
}

function optStr(m: Record<string, unknown>, key: string): string | null {
  const v = m[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") fail(key, "must be text or null");
  return v;
}

function int(m: Record<string, unknown>, key: string, path = key): number {
  const v = m[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) fail(path, "must be an integer");
  return v;
}

function bool(m: Record<string, unknown>, key: string, path = key): boolean {
  const v = m[key];
  if (typeof v !== "boolean") fail(path, "must be true or false");
  return v;
}

function bytes(m: Record<string, unknown>, key: string): Uint8Array {
  const v = m[key];
  if (!(v instanceof Uint8Array)) fail(key, "must be a byte string");
  return v;
}

function map(v: unknown, path: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) fail(path, "must be a map");
  return v as Record<string, unknown>;
}

export function stampFromWire(v: unknown, path = "stamp"): Stamp {
  if (!Array.isArray(v) || v.length !== 3) fail(path, "must be [wall_ms, counter, device_id]");
  const [wall, counter, device] = v as unknown[];
  if (typeof wall !== "number" || !Number.isSafeInteger(wall) || wall < 0) fail(path, "must have wall_ms as an integer");
  if (typeof counter !== "number" || !Number.isSafeInteger(counter) || counter < 0) fail(path, "must have an integer counter");
  if (typeof device !== "string") fail(path, "must have a device id");
  return [wall, counter, device];
}

function arrowFromWire(v: unknown, path: string): Arrow {
  if (v === "X" || v === "M") return v;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 20) return v;
  return fail(path, 'must be an integer 0 to 20, "X" or "M"');
}

export function stateFromWire(v: unknown, path = "state"): ArcherState {
  const m = map(v, path);
  const profile = map(m.profile, `${path}.profile`);
  const arrows = m.arrows;
  if (!Array.isArray(arrows)) fail(`${path}.arrows`, "must be an array");
  return {
    name: str(m, "name", `${path}.name`),
    round: str(m, "round", `${path}.round`),
    profile: {
      bowstyle: str(profile, "bowstyle", `${path}.profile.bowstyle`),
      age_group: str(profile, "age_group", `${path}.profile.age_group`),
      gender: str(profile, "gender", `${path}.profile.gender`),
    },
    arrows: arrows.map((a, i) => arrowFromWire(a, `${path}.arrows[${i}]`)),
    finished: bool(m, "finished", `${path}.finished`),
    left: bool(m, "left", `${path}.left`),
  };
}

export function registerFromWire(v: unknown, path = "register"): WireRegister {
  const m = map(v, path);
  return { archer: str(m, "archer", `${path}.archer`), stamp: stampFromWire(m.stamp, `${path}.stamp`), state: stateFromWire(m.state, `${path}.state`) };
}

function shootFromWire(v: unknown): ShootInfo {
  const m = map(v, "shoot");
  return {
    code: str(m, "code", "shoot.code"),
    shootId: str(m, "shoot_id", "shoot.shoot_id"),
    title: str(m, "title", "shoot.title"),
    creator: str(m, "creator", "shoot.creator"),
    createdMs: int(m, "created_ms", "shoot.created_ms"),
    expiresMs: int(m, "expires_ms", "shoot.expires_ms"),
    timeZone: str(m, "time_zone", "shoot.time_zone"),
  };
}

/** Decode and check one relay frame. */
export function readServerFrame(frame: Uint8Array): ServerMessage {
  const m = decodeFrame(frame);
  if (m.v !== PROTOCOL_VERSION) throw new FrameError("unsupported_version", "The relay speaks another protocol version.");
  switch (m.type) {
    case "welcome":
      return { type: "welcome", shoot: shootFromWire(m.shoot), reset: bool(m, "reset"), update: bytes(m, "update"), serverMs: int(m, "server_ms"), role: str(m, "role"), archer: optStr(m, "archer") };
    case "update":
      return { type: "update", update: bytes(m, "update") };
    case "ack":
      return { type: "ack", id: int(m, "id"), archer: str(m, "archer"), stamp: stampFromWire(m.stamp) };
    case "superseded":
      return { type: "superseded", id: int(m, "id"), winner: registerFromWire(m.winner, "winner") };
    case "error": {
      const id = m.id === undefined || m.id === null ? null : int(m, "id");
      const serverMs = m.server_ms === undefined || m.server_ms === null ? null : int(m, "server_ms");
      return { type: "error", code: str(m, "code"), message: str(m, "message"), id, fatal: m.fatal === true, serverMs };
    }
    case "notice":
      return {
        type: "notice",
        kind: str(m, "kind"),
        round: str(m, "round"),
        archer: optStr(m, "archer"),
        text: str(m, "text"),
        ends: m.ends === undefined || m.ends === null ? null : int(m, "ends"),
      };
    case "pong":
      return { type: "pong", nonce: int(m, "nonce"), serverMs: int(m, "server_ms") };
    default:
      throw new FrameError("unknown_type", "The relay sent a message this client does not know.");
  }
}
