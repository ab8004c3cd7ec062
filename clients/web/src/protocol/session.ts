// The live client: a replica of one shoot, the durable outbox, and the connection loop.
// It is the browser twin of the Python SDK's ShootClient (clients/_client.py); the rules
// are the same and docs/protocol.md states them.
//
// Theory of operation
// - What the user sees (archers(), myState()) is the replica overlaid with this device's
//   outbox, archer by archer, by the register merge: a write shows at once, online or not.
// - The connection loop: open a WebSocket, send `hello` with the replica's state vector,
//   apply the `welcome` (a new replica when `reset`), then apply updates and answers until
//   the socket ends; then reconnect after a delay drawn with full jitter, unless the relay
//   closed with 4401, 4404 or 4410 (a person must act first).
// - Heartbeat: a `ping` once nothing has been sent, or nothing received, for 15 s; if
//   nothing arrives within 10 s of it the socket is dropped *at once*: its handlers are
//   detached and a new socket opened without waiting for `onclose` (a browser that lost the
//   network may hold a dead socket open, and fire `close` only much later). The `offline`
//   event drops the socket the same way; `online` reconnects at once.
// - Sender: pending writes go out oldest first, each when it was never sent on this socket,
//   was re-stamped, or has been unanswered for 10 s, through a token bucket that mirrors the
//   relay's rate limit (burst 20, then 10/s), so replaying a long outbox is paced.
// - Answers: `ack` with the pending stamp drops the write; `superseded` adopts the winner,
//   drops the pending write if the winner is at least as new and emits `replaced`;
//   `clock_skew` corrects the clock from `server_ms` and re-stamps the same state;
//   `rate_limited` empties the bucket and resends later; any other error drops the write and
//   shows its message (status().lastError).
import { Backoff } from "./backoff";
import { HybridClock, sameStamp } from "./clock";
import { FrameError } from "./codec";
import { idbGet, idbPut } from "./idb";
import { type ServerMessage, type WireRegister, helloFrame, pingFrame, readServerFrame, writeFrame } from "./messages";
import { Outbox, OutboxStore, mergeRegisters } from "./outbox";
import { Replica } from "./replica";
import { newDeviceId, deviceId as rememberedDeviceId } from "./storage";
import type {
  ArcherEntry,
  ArcherState,
  Connection,
  Identity,
  NoticeEvent,
  OpenShootOptions,
  Replaced,
  ShootClient,
  ShootInfo,
  Status,
} from "./types";

/** Timings of the connection loop; the defaults follow docs/protocol.md. */
export interface Timings {
  pingIntervalMs: number;
  pongTimeoutMs: number;
  resendAfterMs: number;
  connectTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** How often the heartbeat looks at the socket. */
  tickMs: number;
}

export const DEFAULT_TIMINGS: Timings = {
  pingIntervalMs: 15_000,
  pongTimeoutMs: 10_000,
  resendAfterMs: 10_000,
  connectTimeoutMs: 10_000,
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  tickMs: 1_000,
};

export const WRITES_BURST = 20;
export const WRITES_PER_S = 10;

/** Close codes after which reconnecting cannot help (docs/protocol.md). */
const FATAL_CLOSES: Record<number, { code: string; message: string }> = {
  4401: { code: "unauthorized", message: "This device's access to the shoot is no longer valid. Join the shoot again." },
  4404: { code: "unknown_shoot", message: "There is no shoot with this code." },
  4410: { code: "expired", message: "This shoot has ended." },
};

const FATAL_CODES = new Set(Object.values(FATAL_CLOSES).map((f) => f.code));

/** Extra options for tests and embedders; all optional. */
export interface SessionOptions extends OpenShootOptions {
  timings?: Partial<Timings>;
  /** The device's wall clock in ms (inject a skewed one in tests). */
  wallClock?: () => number;
  /** The WebSocket constructor (the global one by default). */
  webSocket?: typeof WebSocket;
  /** The random source of the backoff jitter. */
  random?: () => number;
  /** Whether to follow the window's `online`/`offline` events (default: when present). */
  watchNetwork?: boolean;
}

type Listener = (arg?: unknown) => void;
type EventName = "change" | "status" | "notice" | "replaced";

/** One outbox per shoot code, archer (or viewer) and device. */
export function outboxKey(code: string, archer: string | null, device: string): string {
  return `${code}/${archer ?? "viewer"}/${device}`;
}

function websocketUrl(origin: string): string {
  return origin.replace(/^http(s?):\/\//, "ws$1://").replace(/\/+$/, "") + "/ws";
}

function pageOrigin(): string {
  if (typeof location === "undefined") throw new Error("openShoot needs an origin outside a browser page.");
  return location.origin;
}

class TokenBucket {
  private tokens: number;
  private updated: number;
  constructor(
    private readonly burst: number,
    private readonly rate: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updated = now;
  }
  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updated) / 1000) * this.rate);
    this.updated = now;
  }
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
  retryAfterMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.rate) * 1000;
  }
  empty(now: number): void {
    this.tokens = 0;
    this.updated = now;
  }
}

export class Session implements ShootClient {
  readonly code: string;
  readonly me: string | null;
  private readonly identity: Identity | null;
  private readonly wsUrl: string;
  private readonly timings: Timings;
  private readonly wall: () => number;
  private readonly WS: typeof WebSocket;
  private readonly backoff: Backoff;
  private readonly clock: HybridClock;
  private readonly store: OutboxStore;
  private readonly listeners = new Map<EventName, Set<Listener>>();
  private shootInfo: ShootInfo | null = null;
  private connection: Connection = "connecting";
  private lastError: { code: string; message: string } | null = null;
  private closed = false;
  private fatal = false;

  // Per socket.
  private ws: WebSocket | null = null;
  private welcomed = false;
  private attempt = 0;
  private nextId = 0;
  private nonce = 0;
  private inflight = new Map<number, WireRegister>();
  private sent = new Map<string, { stamp: WireRegister["stamp"]; at: number }>();
  private bucket: TokenBucket;
  private lastSentAt = 0;
  private lastReceivedAt = 0;
  private pingedAt: number | null = null;
  private lastErrorFrame: { code: string; message: string } | null = null;

  // Timers.
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private senderTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private replicaSaveTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly onOnline = () => this.networkBack();
  private readonly onOffline = () => this.networkLost();
  private readonly watchNetwork: boolean;

  /** Welcomes that said `reset` so far. */
  get resets(): number {
    return this.replica.resets;
  }

  constructor(
    options: SessionOptions & { deviceId: string },
    private replica: Replica,
    private readonly outbox: Outbox,
  ) {
    this.code = options.code;
    this.identity = options.identity ?? null;
    this.me = this.identity?.archerId ?? null;
    this.wsUrl = websocketUrl(options.origin ?? pageOrigin());
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.wall = options.wallClock ?? (() => Date.now());
    const WS = options.webSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (!WS) throw new Error("This environment has no WebSocket.");
    this.WS = WS;
    this.backoff = new Backoff(this.timings.backoffBaseMs, this.timings.backoffCapMs, options.random);
    this.clock = new HybridClock(options.deviceId);
    this.store = new OutboxStore(outboxKey(options.code, this.me, options.deviceId));
    this.bucket = new TokenBucket(WRITES_BURST, WRITES_PER_S, performance.now());
    for (const register of outbox.pending()) this.clock.observe(register.stamp);
    const mine = this.me ? outbox.seen(this.me) : null;
    if (mine) this.clock.observe(mine.stamp);
    if (outbox.clock) this.clock.observe(outbox.clock);
    this.shootInfo = replica.shoot();
    this.watchNetwork = options.watchNetwork ?? typeof addEventListener === "function";
    if (this.watchNetwork) {
      addEventListener("online", this.onOnline);
      addEventListener("offline", this.onOffline);
    }
  }

  // -- what the user reads ---------------------------------------------------------------

  shoot(): ShootInfo | null {
    return this.shootInfo;
  }

  archers(): ReadonlyMap<string, ArcherEntry> {
    const entries = new Map<string, ArcherEntry>();
    const relay = this.replica.archers();
    for (const [id, a] of relay) entries.set(id, { id, state: a.state, stamp: a.stamp, derived: a.derived });
    const local: WireRegister[] = [...this.outbox.pending()];
    const mine = this.me ? this.outbox.seen(this.me) : null;
    if (mine) local.push(mine);
    for (const register of local) {
      const current = entries.get(register.archer);
      const base: WireRegister | null = current ? { archer: register.archer, stamp: current.stamp, state: current.state } : null;
      if (mergeRegisters(base, register) === register) {
        // The relay's derived values describe its own (older) copy; they stay until it catches up.
        entries.set(register.archer, { id: register.archer, state: register.state, stamp: register.stamp, derived: current?.derived ?? null });
      }
    }
    return entries;
  }

  myState(): ArcherState | null {
    return this.me ? (this.archers().get(this.me)?.state ?? null) : null;
  }

  status(): Status {
    return { connection: this.connection, pending: this.outbox.size, lastError: this.lastError };
  }

  /** Writes not yet acknowledged, oldest first. */
  pending(): WireRegister[] {
    return this.outbox.pending();
  }

  on(event: "change" | "status", fn: () => void): () => void;
  on(event: "notice", fn: (n: NoticeEvent) => void): () => void;
  on(event: "replaced", fn: (r: Replaced) => void): () => void;
  on(event: EventName, fn: (arg: never) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const listener = fn as Listener;
    set.add(listener);
    return () => set.delete(listener);
  }

  private emit(event: EventName, arg?: unknown): void {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try {
        fn(arg);
      } catch (error) {
        // A listener's bug must not break the connection loop.
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  // -- writes ----------------------------------------------------------------------------

  async write(state: ArcherState): Promise<void> {
    if (!this.me) throw new Error("A viewer cannot write; join the shoot as an archer.");
    if (this.closed) throw new Error("This shoot client is closed.");
    const register: WireRegister = { archer: this.me, stamp: this.clock.now(this.wall()), state: structuredClone(state) };
    this.outbox.put(register);
    this.outbox.clock = this.clock.last;
    const saved = this.store.save(this.outbox);
    this.emit("change");
    this.emit("status");
    this.pump();
    await saved;
  }

  // -- the connection loop ---------------------------------------------------------------

  /** IndexedDB is unavailable: keep writes in memory, and say what that risks. */
  keepInMemory(): void {
    this.store.memoryOnly = true;
    this.lastError = {
      code: "storage",
      message: "This browser does not let the app save scores on the device: keep the page open until they are sent.",
    };
  }

  /** Start connecting (openShoot calls it). */
  start(): void {
    this.connect();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropSocket(1000, "closed by the app");
    this.clearTimer("reconnect");
    if (this.replicaSaveTimer !== null) {
      clearTimeout(this.replicaSaveTimer);
      this.replicaSaveTimer = null;
      void this.saveReplica();
    }
    if (this.watchNetwork) {
      removeEventListener("online", this.onOnline);
      removeEventListener("offline", this.onOffline);
    }
    this.setConnection("offline");
  }

  private connect(): void {
    if (this.closed || this.fatal) return;
    this.clearTimer("reconnect");
    if (this.watchNetwork && typeof navigator !== "undefined" && navigator.onLine === false) {
      // No network at all: dialling can only fail, and each attempt would flip the screen
      // to "connecting" and back, moving the keypad under the archer's thumb. The
      // `online` event dials (networkBack).
      this.setConnection("offline");
      return;
    }
    this.setConnection("connecting");
    let ws: WebSocket;
    try {
      ws = new this.WS(this.wsUrl);
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.welcomed = false;
    this.lastErrorFrame = null;
    this.connectTimer = setTimeout(() => this.lost("timeout", "The relay did not answer in time; reconnecting.", true), this.timings.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const id = this.identity;
      this.send(helloFrame({ shoot: this.code, role: id ? "archer" : "viewer", sv: this.replica.stateVector(), archer: id?.archerId ?? null, token: id?.token ?? null }));
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.ws !== ws) return;
      this.lastReceivedAt = performance.now();
      if (!(event.data instanceof ArrayBuffer)) {
        this.lost("malformed", "The relay sent a text frame; reconnecting.", false);
        return;
      }
      let message: ServerMessage;
      try {
        message = readServerFrame(new Uint8Array(event.data));
      } catch (error) {
        const code = error instanceof FrameError ? error.code : "malformed";
        this.lost(code, "The relay sent a frame this client cannot read; reconnecting.", false);
        return;
      }
      this.handle(message);
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.closedBy(event.code);
    };
    ws.onerror = () => {
      // A close event follows; the loop reacts there.
    };
  }

  private send(frame: Uint8Array<ArrayBuffer>): void {
    if (!this.ws || this.ws.readyState !== 1) return;
    this.ws.send(frame);
    this.lastSentAt = performance.now();
  }

  /** Detach the socket's handlers and close it; never wait for its close event. */
  private dropSocket(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    this.pingedAt = null;
    this.inflight.clear();
    this.sent.clear();
    for (const name of ["connect", "sender", "heartbeat"] as const) this.clearTimer(name);
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  /** The socket is no good: drop it and reconnect (at once when `now`, else after backoff). */
  private lost(code: string, message: string, now: boolean): void {
    this.dropSocket(code === "offline" ? 1000 : 4000, code);
    this.lastError = { code, message };
    this.setConnection("offline");
    this.scheduleReconnect(now);
  }

  /** Stop for good: only a person can fix this (a new code, a new join). */
  private stopFor(error: { code: string; message: string }): void {
    this.dropSocket(1000, "");
    this.clearTimer("reconnect");
    this.fatal = true;
    this.lastError = error;
    this.setConnection("offline");
    this.emit("status");
  }

  private closedBy(closeCode: number): void {
    const fatal = FATAL_CLOSES[closeCode];
    if (fatal) {
      this.stopFor(this.lastErrorFrame ?? fatal);
      return;
    }
    this.dropSocket(1000, "");
    if (this.lastErrorFrame) this.lastError = this.lastErrorFrame;
    this.setConnection("offline");
    this.scheduleReconnect(false);
  }

  private scheduleReconnect(now: boolean): void {
    if (this.closed || this.fatal) return;
    this.clearTimer("reconnect");
    const delay = now ? 0 : this.backoff.delay(this.attempt);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private networkLost(): void {
    if (this.closed || this.fatal) return;
    this.lost("offline", "This device is offline; scores are kept and sent when it is back.", false);
  }

  private networkBack(): void {
    if (this.closed || this.fatal || this.welcomed) return;
    this.attempt = 0;
    this.dropSocket(1000, "network back");
    this.connect();
  }

  // -- what arrives ----------------------------------------------------------------------

  private handle(message: ServerMessage): void {
    if (!this.welcomed) {
      if (message.type === "welcome") this.onWelcome(message);
      else if (message.type === "error") {
        this.lastErrorFrame = { code: message.code, message: message.message };
        // As the SDK does, the refusal of `hello` decides, whatever close code follows
        // (or fails to arrive).
        if (FATAL_CODES.has(message.code)) this.stopFor(this.lastErrorFrame);
      }
      return;
    }
    switch (message.type) {
      case "update":
        this.replica.applyUpdate(message.update);
        this.afterReplicaChange();
        break;
      case "ack": {
        this.inflight.delete(message.id);
        this.clock.observe(message.stamp);
        if (this.outbox.acknowledge(message.archer, message.stamp)) {
          this.saveOutbox();
          this.emit("status");
          this.emit("change");
        }
        break;
      }
      case "superseded": {
        const sent = this.inflight.get(message.id) ?? null;
        this.inflight.delete(message.id);
        this.clock.observe(message.winner.stamp);
        const dropped = this.outbox.adopt(message.winner);
        this.saveOutbox();
        const lost = sent ?? dropped;
        if (lost) this.emit("replaced", { mine: lost.state, winner: message.winner.state } satisfies Replaced);
        this.emit("status");
        this.emit("change");
        break;
      }
      case "error":
        if (message.id === null) this.lastErrorFrame = this.lastError = { code: message.code, message: message.message };
        else this.onWriteError(message.id, message.code, message.message, message.serverMs);
        this.emit("status");
        break;
      case "notice":
        this.emit("notice", {
          kind: message.kind,
          round: message.round,
          archer: message.archer,
          text: message.text,
          ends: message.ends,
        } satisfies NoticeEvent);
        break;
      case "pong":
      case "welcome":
        break;
    }
  }

  private onWelcome(welcome: Extract<ServerMessage, { type: "welcome" }>): void {
    this.clearTimer("connect");
    if (this.outbox.shootId !== null && this.outbox.shootId !== welcome.shoot.shootId) {
      // The code names another shoot now (codes are reused on later days).
      this.outbox.clear();
    }
    this.outbox.shootId = welcome.shoot.shootId;
    try {
      this.replica.applyWelcome(welcome.reset, welcome.update);
    } catch {
      this.lost("invalid_update", "The relay sent a document update this client cannot apply; reconnecting.", false);
      return;
    }
    this.shootInfo = welcome.shoot;
    this.welcomed = true;
    this.attempt = 0;
    if (!this.store.memoryOnly) this.lastError = null;
    this.bucket = new TokenBucket(WRITES_BURST, WRITES_PER_S, performance.now());
    this.lastSentAt = this.lastReceivedAt = performance.now();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.timings.tickMs);
    this.setConnection("online");
    this.afterReplicaChange();
    this.pump();
  }

  private afterReplicaChange(): void {
    if (this.me) {
      const own = this.replica.archers().get(this.me);
      if (own) {
        this.clock.observe(own.stamp);
        if (this.outbox.see({ archer: this.me, stamp: own.stamp, state: own.state })) this.saveOutbox();
      }
    }
    this.scheduleReplicaSave();
    this.emit("change");
  }

  private onWriteError(id: number, code: string, message: string, serverMs: number | null): void {
    const sent = this.inflight.get(id);
    this.inflight.delete(id);
    if (!sent) return;
    const pending = this.outbox.get(sent.archer);
    const stillPending = pending !== null && sameStamp(pending.stamp, sent.stamp);
    if (code === "rate_limited") {
      // The relay's bucket is empty: empty ours too, and make the write due again.
      this.bucket.empty(performance.now());
      const mark = this.sent.get(sent.archer);
      if (mark && sameStamp(mark.stamp, sent.stamp)) this.sent.delete(sent.archer);
      this.pump();
    } else if (code === "clock_skew" && serverMs !== null) {
      this.clock.correct(this.wall(), serverMs);
      if (stillPending) {
        this.outbox.replace({ archer: sent.archer, stamp: this.clock.now(this.wall()), state: sent.state });
        this.outbox.clock = this.clock.last;
        this.saveOutbox();
        this.pump();
      }
    } else if (stillPending) {
      this.outbox.discard(sent.archer, sent.stamp);
      this.saveOutbox();
      this.lastError = { code, message };
      this.emit("change");
    }
  }

  // -- sender and heartbeat --------------------------------------------------------------

  private dueAt(register: WireRegister): number {
    const mark = this.sent.get(register.archer);
    if (!mark || !sameStamp(mark.stamp, register.stamp)) return -Infinity;
    return mark.at + this.timings.resendAfterMs;
  }

  /** Send due writes, oldest first, never faster than the relay's rate limit. */
  private pump(): void {
    this.clearTimer("sender");
    while (this.ws && this.welcomed && this.me) {
      const now = performance.now();
      const pending = this.outbox.pending();
      const due = pending.find((r) => this.dueAt(r) <= now);
      if (!due) {
        const next = Math.min(...pending.map((r) => this.dueAt(r)));
        if (Number.isFinite(next)) this.senderTimer = setTimeout(() => this.pump(), Math.max(0, next - now));
        return;
      }
      if (!this.bucket.tryTake(now)) {
        this.senderTimer = setTimeout(() => this.pump(), Math.ceil(this.bucket.retryAfterMs(now)));
        return;
      }
      this.nextId += 1;
      this.inflight.set(this.nextId, due);
      this.sent.set(due.archer, { stamp: due.stamp, at: now });
      this.send(writeFrame(this.nextId, due));
    }
  }

  private heartbeat(): void {
    if (!this.ws || !this.welcomed) return;
    const now = performance.now();
    if (this.pingedAt !== null) {
      if (this.lastReceivedAt >= this.pingedAt) this.pingedAt = null;
      else if (now - this.pingedAt >= this.timings.pongTimeoutMs) {
        this.lost("heartbeat_timeout", "The relay stopped answering; reconnecting.", true);
        return;
      }
    }
    if (this.pingedAt === null && now - Math.min(this.lastSentAt, this.lastReceivedAt) >= this.timings.pingIntervalMs) {
      this.nonce += 1;
      this.send(pingFrame(this.nonce));
      this.pingedAt = this.lastSentAt;
    }
  }

  // -- plumbing --------------------------------------------------------------------------

  private saveOutbox(): void {
    this.outbox.clock = this.clock.last;
    this.store.save(this.outbox).catch((error: unknown) => {
      this.lastError = { code: "storage", message: `This device could not save its scores (${String(error)}).` };
      this.emit("status");
    });
  }

  private scheduleReplicaSave(): void {
    if (this.replicaSaveTimer !== null || this.closed) return;
    this.replicaSaveTimer = setTimeout(() => {
      this.replicaSaveTimer = null;
      void this.saveReplica();
    }, 250);
  }

  private async saveReplica(): Promise<void> {
    try {
      await idbPut("replicas", this.code, { update: this.replica.snapshot(), shootId: this.shootInfo?.shootId ?? null });
    } catch {
      // The replica is a cache: the relay sends it again.
    }
  }

  private setConnection(connection: Connection): void {
    if (connection === this.connection) return;
    this.connection = connection;
    this.emit("status");
  }

  private clearTimer(name: "reconnect" | "connect" | "sender" | "heartbeat"): void {
    switch (name) {
      case "reconnect":
        if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        break;
      case "connect":
        if (this.connectTimer !== null) clearTimeout(this.connectTimer);
        this.connectTimer = null;
        break;
      case "sender":
        if (this.senderTimer !== null) clearTimeout(this.senderTimer);
        this.senderTimer = null;
        break;
      case "heartbeat":
        if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = null;
        break;
    }
  }
}

/**
 * Open a shoot: the replica and outbox saved on this device first (so it shows at once,
 * offline too), then the connection loop in the background. A viewer without `identity`.
 */
export async function openShoot(options: SessionOptions): Promise<ShootClient> {
  let storage = true;
  let device = options.deviceId;
  if (!device) {
    try {
      device = await rememberedDeviceId();
    } catch {
      storage = false; // no IndexedDB (a private window, say): a device id for this page only
      device = newDeviceId();
    }
  }
  let outbox: Outbox;
  try {
    outbox = await new OutboxStore(outboxKey(options.code, options.identity?.archerId ?? null, device)).load();
  } catch {
    storage = false;
    outbox = new Outbox();
  }
  const saved = storage ? ((await idbGet("replicas", options.code).catch(() => undefined)) as { update?: Uint8Array } | undefined) : undefined;
  let replica: Replica;
  try {
    replica = new Replica(saved?.update ?? null);
  } catch {
    replica = new Replica(); // a damaged cache: the relay sends everything again
  }
  const session = new Session({ ...options, deviceId: device }, replica, outbox);
  if (!storage) session.keepInMemory();
  session.start();
  return session;
}
