// The live client: a thin driver of the client session machine (clientSession.ts, a port of
// sync/client_session.py that makes every protocol decision). It is the browser twin of the
// Python SDK's ShootClient (clients/_client.py) and only moves things:
//
// - the socket: open a WebSocket, feed the machine `connected`, every frame and the close;
//   carry out the actions it returns, in order. Every end of a socket, or of a dial that
//   failed, goes to the machine (`disconnected`, with a jitter drawn from `random`), and the
//   socket is dialled again at the time of its `reconnect` action (the rule, full-jitter
//   backoff counted since the last welcome, is the machine's: reconnect.ts); none comes once
//   the session was refused for good (a fatal error or close code: a person must act first).
//   A socket is dropped *at once* (handlers detached, no waiting for `onclose`: a browser
//   that lost the network may hold a dead socket open). The window's `offline` event drops
//   it the same way; `online` tells the machine, which dials at once.
// - one timer, set to the machine's latest `timer` action, that calls `timerFired` (writes,
//   pings and every timeout come from there);
// - the outbox in IndexedDB: `saveOutbox` starts a save, and a `send` after it waits for it,
//   so a write never reaches the relay before the save that keeps it;
// - news for the views: `change`, `status`, `notice` and `replaced` events, and the
//   replica's snapshot saved for the next page load.
import { ApiError } from "./api";
import { type Action, FATAL_CLOSE_CODES, encodeClientMessage } from "./clientActions";
import { ClientSession } from "./clientSession";
import { FrameError } from "./codec";
import { idbGet, idbPut } from "./idb";
import { type ServerMessage, type WireRegister, readServerFrame } from "./messages";
import { Outbox, OutboxStore } from "./outbox";
import { Replica } from "./replica";
import { DEFAULT_TIMINGS, FATAL_CLOSES, type SessionOptions, type Timings, outboxKey, pageOrigin, websocketUrl } from "./sessionOptions";
import { newDeviceId, deviceId as rememberedDeviceId } from "./storage";
import type { ArcherEntry, ArcherState, Connection, NoticeEvent, Replaced, ShootClient, ShootInfo, Status } from "./types";

export { DEFAULT_TIMINGS, outboxKey } from "./sessionOptions";
export type { SessionOptions, Timings } from "./sessionOptions";

type Listener = (arg?: unknown) => void;
type EventName = "change" | "status" | "notice" | "replaced";
type Problem = { code: string; message: string };

/** The monotonic clock the machine's timers are in (seconds). */
const monotonic = (): number => performance.now() / 1000;

export class Session implements ShootClient {
  readonly code: string;
  readonly me: string | null;
  private readonly machine: ClientSession;
  private readonly wsUrl: string;
  private readonly timings: Timings;
  private readonly wall: () => number;
  private readonly WS: typeof WebSocket;
  private readonly random: () => number;
  private readonly store: OutboxStore;
  private readonly listeners = new Map<EventName, Set<Listener>>();
  private shootInfo: ShootInfo | null;
  private connection: Connection = "connecting";
  private lastError: Problem | null = null;
  /** An `error` frame about the session: the reason for the close that usually follows. */
  private lastErrorFrame: Problem | null = null;
  private closed = false;
  private fatal = false;
  private ws: WebSocket | null = null;
  /** The last outbox save asked for (saves complete in order); a `send` waits for it. */
  private saved: Promise<void> = Promise.resolve();
  /** Sends in order, each after the saves before it. */
  private sending: Promise<void> = Promise.resolve();
  private openTimer: ReturnType<typeof setTimeout> | null = null;
  private machineTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private replicaSaveTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly onOnline = () => this.networkBack();
  private readonly onOffline = () => this.networkLost();
  private readonly watchNetwork: boolean;

  constructor(
    options: SessionOptions & { deviceId: string },
    private readonly replica: Replica,
    private readonly outbox: Outbox,
  ) {
    this.code = options.code;
    const identity = options.identity ?? null;
    this.me = identity?.archerId ?? null;
    this.wsUrl = websocketUrl(options.origin ?? pageOrigin(), options.code);
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    const t = this.timings;
    this.machine = new ClientSession(options.code, options.deviceId, {
      archerId: this.me,
      token: identity?.token ?? null,
      outbox,
      replica,
      timings: { pingIntervalS: t.pingIntervalMs / 1000, pongTimeoutS: t.pongTimeoutMs / 1000, resendAfterS: t.resendAfterMs / 1000, connectTimeoutS: t.connectTimeoutMs / 1000, backoffBaseS: t.backoffBaseMs / 1000, backoffCapS: t.backoffCapMs / 1000 },
    });
    this.wall = options.wallClock ?? (() => Date.now());
    const WS = options.webSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (!WS) throw new Error("This environment has no WebSocket.");
    this.WS = WS;
    this.random = options.random ?? Math.random;
    this.store = new OutboxStore(outboxKey(options.code, this.me, options.deviceId));
    this.shootInfo = replica.shoot();
    this.watchNetwork = options.watchNetwork ?? typeof addEventListener === "function";
    if (this.watchNetwork) {
      addEventListener("online", this.onOnline);
      addEventListener("offline", this.onOffline);
    }
  }

  /** Welcomes that said `reset` so far. */
  get resets(): number {
    return this.machine.resets;
  }

  // -- what the user reads ---------------------------------------------------------------

  shoot(): ShootInfo | null {
    return this.shootInfo;
  }

  archers(): ReadonlyMap<string, ArcherEntry> {
    const relay = this.replica.archers();
    const entries = new Map<string, ArcherEntry>();
    for (const [id, r] of this.machine.registers()) {
      // The relay's derived values describe its own copy; they stay until it catches up.
      entries.set(id, { id, state: r.state, stamp: r.stamp, derived: relay.get(id)?.derived ?? null });
    }
    return entries;
  }

  myState(): ArcherState | null {
    return this.me ? (this.machine.visible(this.me)?.state ?? null) : null;
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

  /** Resolves once the write is in the IndexedDB outbox. */
  async write(state: ArcherState): Promise<void> {
    if (this.closed) throw new Error("This shoot client is closed.");
    if (this.me && this.machine.initial === null) this.machine.initial = structuredClone(state); // before any state was seen
    const [, actions] = this.machine.write(() => structuredClone(state), monotonic(), this.wall());
    this.carry(actions);
    await this.saved;
  }

  // -- the socket ------------------------------------------------------------------------

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
    this.clearReconnect();
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
    this.clearReconnect();
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
      this.setConnection("offline");
      this.carry(this.machine.disconnected(monotonic(), this.random()));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.lastErrorFrame = null;
    // Until the socket opens; from then on the machine times the welcome.
    this.openTimer = setTimeout(() => this.lost("timeout", "The relay did not answer in time; reconnecting."), this.timings.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.clearOpenTimer();
      this.carry(this.machine.connected(monotonic()));
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.ws !== ws) return;
      const data = event.data instanceof ArrayBuffer ? new Uint8Array(event.data) : String(event.data);
      try {
        this.carry(this.onFrame(data));
      } catch {
        // The machine closes for an update the replica cannot apply itself; anything
        // thrown here is unexpected: drop the socket and catch up on a new one.
        this.lost("invalid_update", "The relay sent a document update this client cannot apply; reconnecting.");
      }
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.closedBy(event.code);
    };
    ws.onerror = () => {
      // A close event follows; the loop reacts there.
    };
  }

  private onFrame(data: Uint8Array | string): Action[] {
    const now = monotonic();
    if (typeof data === "string") return this.machine.frameReceived(data, now, this.wall());
    let message: ServerMessage;
    try {
      message = readServerFrame(data);
    } catch (error) {
      if (error instanceof FrameError) return this.machine.frameReceived(data, now, this.wall());
      throw error;
    }
    return this.machine.received(message, now, this.wall());
  }

  /** Detach the socket's handlers and close it; never wait for its close event. */
  private dropSocket(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = null;
    this.clearOpenTimer();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
    } catch {
      // Already closing.
    }
    this.carry(this.machine.disconnected(monotonic(), this.random()));
  }

  /** The socket is no good: drop it (the machine says when to dial again). */
  private lost(code: string, message: string): void {
    this.dropSocket(code === "offline" ? 1000 : 4000, code);
    this.lastError = { code, message };
    this.setConnection("offline");
  }

  /** Stop for good: only a person can fix this (a new code, a new join). */
  private stopFor(error: Problem): void {
    this.dropSocket(1000, "");
    this.clearReconnect();
    this.fatal = true;
    this.lastError = error;
    this.setConnection("offline");
    this.emit("status");
  }

  private closedBy(closeCode: number): void {
    const ws = this.ws;
    this.ws = null;
    this.clearOpenTimer();
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.carry(this.machine.disconnected(monotonic(), this.random(), closeCode));
    if (FATAL_CLOSE_CODES.has(closeCode)) {
      this.stopFor(this.lastErrorFrame ?? FATAL_CLOSES[closeCode]!);
      return;
    }
    if (this.lastErrorFrame) this.lastError = this.lastErrorFrame;
    this.setConnection("offline");
  }

  /** Dial again at `at` (the machine's monotonic seconds), replacing any earlier request. */
  private scheduleReconnect(at: number): void {
    if (this.closed || this.fatal) return;
    this.clearReconnect();
    const delay = Math.max(0, at * 1000 - performance.now());
    this.reconnectTimer = setTimeout(() => this.connect(), Math.ceil(delay));
  }

  private networkLost(): void {
    if (this.closed || this.fatal) return;
    this.lost("offline", "This device is offline; scores are kept and sent when it is back.");
  }

  private networkBack(): void {
    if (this.closed || this.fatal || this.machine.phase === "live") return;
    this.dropSocket(1000, "network back");
    this.carry(this.machine.online(monotonic()));
  }

  // -- carrying out the machine's actions ------------------------------------------------

  private carry(actions: Action[]): void {
    for (const action of actions) {
      switch (action.kind) {
        case "send":
          this.send(encodeClientMessage(action.message));
          break;
        case "saveOutbox":
          this.saveOutbox();
          break;
        case "changed":
          if (action.source === "relay") this.scheduleReplicaSave();
          this.emit("change");
          this.emit("status");
          break;
        case "welcomed":
          this.shootInfo = action.shoot;
          if (!this.store.memoryOnly) this.lastError = null;
          this.setConnection("online");
          break;
        case "acked":
          this.emit("status");
          this.emit("change");
          break;
        case "replaced":
          this.emit("replaced", { mine: action.lost.state, winner: action.winner.state, acknowledged: action.acknowledged } satisfies Replaced);
          break;
        case "refused":
          this.lastError = { code: action.code, message: action.message };
          this.emit("status");
          break;
        case "notice":
          this.emit("notice", action.notice);
          break;
        case "relayError":
          this.lastErrorFrame = this.lastError = { code: action.code, message: action.message };
          this.emit("status");
          break;
        case "close":
          this.onClose(action.code, action.message, action.fatal);
          break;
        case "timer":
          this.setMachineTimer(action.at);
          break;
        case "reconnect":
          this.scheduleReconnect(action.at);
          break;
      }
    }
  }

  private onClose(code: string, message: string, fatal: boolean): void {
    if (fatal) this.stopFor({ code, message });
    else this.lost(code, message);
  }

  private send(frame: Uint8Array<ArrayBuffer>): void {
    const ws = this.ws;
    const saved = this.saved;
    this.sending = this.sending.then(async () => {
      await saved;
      try {
        if (this.ws === ws && ws !== null && ws.readyState === 1) ws.send(frame);
      } catch {
        // The socket is closing; its close event brings the machine the news.
      }
    });
  }

  private setMachineTimer(at: number): void {
    if (this.machineTimer !== null) clearTimeout(this.machineTimer);
    this.machineTimer = null;
    if (!Number.isFinite(at) || this.closed) return;
    const delay = Math.max(0, at * 1000 - performance.now());
    this.machineTimer = setTimeout(() => {
      this.machineTimer = null;
      this.carry(this.machine.timerFired(monotonic(), this.wall()));
    }, Math.ceil(delay));
  }

  // -- plumbing --------------------------------------------------------------------------

  private saveOutbox(): void {
    this.saved = this.store.save(this.outbox).catch((error: unknown) => {
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

  private clearOpenTimer(): void {
    if (this.openTimer !== null) clearTimeout(this.openTimer);
    this.openTimer = null;
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}

/**
 * Open a shoot: the replica and outbox saved on this device first (so it shows at once,
 * offline too), then the connection loop in the background. A viewer without `identity`.
 * A code the relay can never have (not 1000 to 9999, e.g. a mistyped link) is refused here:
 * the relay answers its hello with an `invalid_field` error that is not fatal for good, so
 * the socket would otherwise redial forever behind an empty "offline" board.
 */
export async function openShoot(options: SessionOptions): Promise<ShootClient> {
  if (!/^[1-9]\d{3}$/.test(options.code)) {
    throw new ApiError(400, "invalid_code", "A shoot code is four digits, 1000 to 9999.");
  }
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
