// The session against a real relay (started by tests/test_web_client.py, which passes its
// URL in FAST_SHOOT_RELAY_URL); skipped when run without one.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { test } from "node:test";
import { createShoot, joinShoot } from "../src/protocol/api";
import { encodeFrame } from "../src/protocol/codec";
import { type Session, openShoot } from "../src/protocol/session";
import type { ArcherState, Identity, Replaced } from "../src/protocol/types";

const origin = process.env.FAST_SHOOT_RELAY_URL;
const live = { skip: origin ? false : "needs FAST_SHOOT_RELAY_URL (a running relay)" };
const fast = { pingIntervalMs: 300, pongTimeoutMs: 400, tickMs: 50, backoffBaseMs: 50, backoffCapMs: 200, connectTimeoutMs: 3000 };

async function until(what: string, check: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function newArcher(name = "Chris"): Promise<{ code: string; me: Identity }> {
  const shoot = await createShoot({ creator: "Sam", title: "Club night", timeZone: "Europe/London" }, { origin });
  const me = await joinShoot(shoot.code, { name, round: "national", bowstyle: "recurve", age_group: "adult", gender: "open" }, { origin });
  return { code: shoot.code, me };
}

function withArrows(state: ArcherState, arrows: ArcherState["arrows"]): ArcherState {
  return { ...state, arrows: [...state.arrows, ...arrows] };
}

/** A WebSocket whose traffic a test can freeze (like a phone whose network vanished) or refuse. */
class Gate {
  static frozen = false;
  static refuse = false;
  static opened = 0;
}
class GatedSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  private real: WebSocket | null = null;
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  binaryType: BinaryType = "arraybuffer";
  private closedFake = false;
  constructor(url: string) {
    if (Gate.refuse) {
      setTimeout(() => this.onclose?.({ code: 1006 } as CloseEvent), 5);
      this.closedFake = true;
      return;
    }
    Gate.opened += 1;
    const real = new WebSocket(url);
    real.binaryType = "arraybuffer";
    real.onopen = (e) => this.onopen?.(e);
    real.onmessage = (e) => {
      if (!Gate.frozen) this.onmessage?.(e);
    };
    real.onclose = (e) => this.onclose?.(e);
    real.onerror = (e) => this.onerror?.(e);
    this.real = real;
  }
  get readyState(): number {
    return this.closedFake ? 3 : (this.real?.readyState ?? 3);
  }
  send(data: Uint8Array<ArrayBuffer>): void {
    if (!Gate.frozen) this.real?.send(data);
  }
  close(code?: number, reason?: string): void {
    this.real?.close(code === undefined || code === 1000 || (code >= 3000 && code < 5000) ? code : 1000, reason);
  }
}
const gated = GatedSocket as unknown as typeof WebSocket;

test("an archer's writes reach a viewer, and are acknowledged", live, async () => {
  const { code, me } = await newArcher();
  const archer = await openShoot({ origin, code, identity: me, deviceId: "phone-1", timings: fast, watchNetwork: false });
  const viewer = await openShoot({ origin, code, deviceId: "viewer-1", timings: fast, watchNetwork: false });
  try {
    await until("the archer's own state", () => archer.myState() !== null);
    assert.equal(archer.shoot()?.title, "Club night");
    await archer.write(withArrows(archer.myState()!, [9, 9, 7, 7, 5, "M"]));
    assert.equal(archer.status().pending, 1); // shown at once, pending until acked
    assert.deepEqual(archer.myState()?.arrows, [9, 9, 7, 7, 5, "M"]);
    await archer.write(withArrows(archer.myState()!, [9, 9, 7, 5, 3, 1]));
    await until("the ack", () => archer.status().pending === 0);
    await until("the viewer's copy", () => viewer.archers().get(me.archerId)?.state.arrows.length === 12);
    assert.deepEqual(viewer.archers().get(me.archerId)?.state.arrows, [9, 9, 7, 7, 5, "M", 9, 9, 7, 5, 3, 1]);
    // The relay wrote what only it can compute beside the state, in the same update.
    const derived = viewer.archers().get(me.archerId)?.derived;
    assert.equal(derived?.status, "on_track");
    assert.equal(typeof derived?.handicap, "number");
    assert.equal(typeof derived?.predicted, "number");
    // A score the round does not allow (a National has no 10s) is refused with a sentence
    // and dropped; the archer's state goes back to the relay's.
    await archer.write(withArrows(archer.myState()!, [10]));
    await until("the refusal", () => archer.status().pending === 0);
    assert.equal(archer.status().lastError?.code, "invalid_arrow");
    assert.equal(archer.myState()?.arrows.length, 12);
    assert.equal(viewer.me, null);
    assert.equal(viewer.status().connection, "online");
  } finally {
    archer.close();
    viewer.close();
  }
});

test("a silent socket is dropped by the heartbeat and replaced at once", live, async () => {
  const { code, me } = await newArcher();
  Gate.opened = 0;
  Gate.frozen = false;
  const archer = (await openShoot({ origin, code, identity: me, deviceId: "phone-2", timings: fast, webSocket: gated, watchNetwork: false })) as Session;
  const statuses: string[] = [];
  archer.on("status", () => statuses.push(archer.status().connection));
  try {
    await until("online", () => archer.status().connection === "online");
    Gate.frozen = true; // nothing in or out, and no close event: a dead network
    await archer.write(withArrows(archer.myState()!, [9, 9, 9, 9, 9, 9]));
    await until("the heartbeat to give up", () => statuses.includes("offline"));
    Gate.frozen = false;
    await until("a new socket", () => Gate.opened >= 2 && archer.status().connection === "online");
    await until("the write's ack", () => archer.status().pending === 0);
    assert.equal(archer.status().lastError, null);
  } finally {
    archer.close();
  }
});

test("a write made offline loses to a newer one from another device: replaced", live, async () => {
  const { code, me } = await newArcher();
  Gate.refuse = true; // the phone is offline from the start
  const behind = () => Date.now() - 60_000; // and its clock is a minute behind
  const phone = await openShoot({ origin, code, identity: me, deviceId: "phone-3", timings: fast, webSocket: gated, wallClock: behind, watchNetwork: false });
  const tablet = await openShoot({ origin, code, identity: me, deviceId: "tablet-3", timings: fast, watchNetwork: false });
  const replaced: Replaced[] = [];
  phone.on("replaced", (r) => replaced.push(r));
  try {
    await until("the tablet online", () => tablet.myState() !== null);
    const base = tablet.myState()!;
    await phone.write(withArrows(base, [5, 5, 5, 5, 5, 5]));
    await tablet.write(withArrows(base, [9, 9, 9, 9, 9, 9]));
    await until("the tablet's ack", () => tablet.status().pending === 0);
    Gate.refuse = false;
    await until("the phone's write answered", () => phone.status().pending === 0, 10_000);
    assert.equal(replaced.length, 1);
    assert.deepEqual(replaced[0]!.mine.arrows, [5, 5, 5, 5, 5, 5]);
    assert.deepEqual(replaced[0]!.winner.arrows, [9, 9, 9, 9, 9, 9]);
    assert.deepEqual(phone.myState()?.arrows, [9, 9, 9, 9, 9, 9]);
  } finally {
    Gate.refuse = false;
    phone.close();
    tablet.close();
  }
});

/** A socket that answers `hello` from a script, to check the loop's decisions exactly. */
function scripted(answer: (opened: number) => { frames: Record<string, unknown>[]; close: number }) {
  let opened = 0;
  class Scripted {
    readyState = 0;
    binaryType = "arraybuffer";
    onopen: ((e: Event) => void) | null = null;
    onmessage: ((e: MessageEvent) => void) | null = null;
    onclose: ((e: CloseEvent) => void) | null = null;
    onerror: ((e: Event) => void) | null = null;
    constructor() {
      opened += 1;
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({} as Event);
      }, 1);
    }
    send(): void {
      const { frames, close } = answer(opened);
      setTimeout(() => {
        for (const f of frames) {
          const bytes = encodeFrame(f);
          this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) } as MessageEvent);
        }
        this.readyState = 3;
        this.onclose?.({ code: close } as CloseEvent);
      }, 1);
    }
    close(): void {
      this.readyState = 3;
    }
  }
  return { socket: Scripted as unknown as typeof WebSocket, opened: () => opened };
}

test("a refused hello stops the client with the relay's sentence", async () => {
  const refusal = { v: 1, type: "error", code: "unknown_shoot", message: "There is no shoot with that code.", id: null, fatal: true };
  const script = scripted(() => ({ frames: [refusal], close: 4404 }));
  const client = await openShoot({ origin: "http://relay.invalid", code: "1000", deviceId: "v", timings: fast, webSocket: script.socket, watchNetwork: false });
  try {
    await until("the refusal", () => client.status().lastError !== null);
    await new Promise((r) => setTimeout(r, 300)); // several backoff delays: no retry comes
    assert.equal(script.opened(), 1);
    assert.deepEqual(client.status().lastError, { code: "unknown_shoot", message: "There is no shoot with that code." });
    assert.equal(client.status().connection, "offline");
  } finally {
    client.close();
  }
});

test("a code no shoot can have is refused before any socket opens", async () => {
  const script = scripted(() => ({ frames: [], close: 1006 }));
  for (const code of ["0001", "0999", "12", "10000"]) {
    await assert.rejects(
      openShoot({ origin: "http://relay.invalid", code, deviceId: "v", timings: fast, webSocket: script.socket, watchNetwork: false }),
      { code: "invalid_code", message: "A shoot code is four digits, 1000 to 9999." },
    );
  }
  assert.equal(script.opened(), 0);
});

test("abnormal closes are retried with backoff; a going-away relay too", async () => {
  const script = scripted((n) => ({ frames: [], close: n % 2 ? 1006 : 1001 }));
  const client = await openShoot({ origin: "http://relay.invalid", code: "1001", deviceId: "v", timings: fast, webSocket: script.socket, watchNetwork: false });
  try {
    await until("three attempts", () => script.opened() >= 3);
    assert.equal(client.status().connection === "online", false);
  } finally {
    client.close();
  }
  const after = script.opened();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(script.opened(), after); // closed: no more attempts
});
