// The client's side of a shoot session as a state machine: events in, actions out. A port of
// sync/client_session.py, rule for rule; test/session-fixtures.test.ts replays transcripts the
// Python machine produced (test/fixtures/session.json, kept fresh by
// tests/test_web_session.py) and compares every action.
//
// Theory of operation: like h11's connection object, ClientSession decides and does no I/O
// (no socket, clock, timer or IndexedDB). Its driver (session.ts) feeds it events, with the
// time passed in, and carries out the actions that come back, in order. It owns the session
// order (hello, then nothing until the welcome), the replica and the reset rule, the outbox
// (sent oldest first when due, paced by a bucket mirroring the relay's, answers paired by
// request id), the hybrid clock and its clock_skew correction, the heartbeat, the reconnect
// rule (reconnect.ts: full-jitter backoff counted since the last welcome; `online` dials at
// once), the shoot's identity (a welcome naming another shoot than the outbox's empties the
// outbox: codes are reused on later days), and the visible loser (`replaced`: an edit of
// this device's another device's newer state replaced; carriedEdits.ts keeps its memory).
// One connection's state and its timing rules (heartbeat, resend, deadline): clientLink.ts.
//
// event                           actions it can return
// connected(now)                  send(hello), timer (close(fatal) once refused for good)
// frameReceived(data, now, wall)  as received; a frame that is not a valid message: close
// received(message, now, wall)    welcomed, changed, saveOutbox, acked, replaced, refused,
//                                 notice, relayError, close (invalid_update for an update
//                                 the replica cannot apply), timer
// timerFired(now, wall)           send(write), send(ping), close(timeout/heartbeat_timeout), timer
// write(change, now, wall)        [register, actions]: saveOutbox, changed(local), replaced, timer
// disconnected(now, jitter, closeCode?)  reconnect(at), timer(Infinity); a fatal close code (or a
//                                 session refused for good): phase "closed", no reconnect
// online(now)                     reconnect(now) while offline, timer
//
// Every event's actions end with a `timer`. `now` is monotonic seconds, `wall` the device's
// wall clock in ms. Writes only go out from timerFired. `saveOutbox` must complete before the
// actions after it (a write's `send` must not overtake the save that keeps it).
import { CarriedEdits, Rewrite, replaced } from "./carriedEdits";
import {
  type Action,
  type ClientMessage,
  DEFAULT_SESSION_TIMINGS,
  FATAL_CLOSE_CODES,
  FATAL_CODES,
  type Phase,
  type SessionTimings,
  TokenBucket,
  WRITES_BURST,
  WRITES_PER_S,
  WriteUnavailable,
} from "./clientActions";
import { Link } from "./clientLink";
import { HybridClock, sameStamp } from "./clock";
import { FrameError } from "./codec";
import { type ServerMessage, type WireRegister, readServerFrame } from "./messages";
import { Outbox, mergeRegisters, sameRegister } from "./outboxState";
import { ReconnectRule } from "./reconnect";
import { Replica } from "./replica";
import type { ArcherState, ShootInfo, Stamp } from "./types";

const UNAPPLIABLE_UPDATE = "The relay sent a document update this client cannot apply; reconnecting.";

export interface ClientSessionOptions {
  archerId?: string | null;
  token?: string | null;
  /** The archer's state at join, the base of the first write before the relay was seen. */
  initial?: ArcherState | null;
  /** What the driver loaded from its durable store. */
  outbox?: Outbox | null;
  /** A replica restored from a saved snapshot. */
  replica?: Replica | null;
  timings?: Partial<SessionTimings>;
}

export class ClientSession {
  readonly archerId: string | null;
  readonly token: string | null;
  /** The base of the first write before any state was seen (a driver may set it late). */
  initial: ArcherState | null;
  readonly timings: SessionTimings;
  readonly outbox: Outbox;
  replica: Replica;
  readonly clock: HybridClock;
  phase: Phase = "offline";
  shoot: ShootInfo | null = null;
  /** Sessions that reached `welcome`. */
  connections = 0;
  /** Welcomes that said `reset`. */
  resets = 0;
  private known = new Map<string, WireRegister>();
  /** What the visible-loser rule remembers across answers and connections. */
  private readonly edits: CarriedEdits;
  /** The wall clock of the message being handled (a rewrite stamps with it). */
  private wallMs = 0;
  private conn: Link | null = null;
  /** When to dial again (read `reconnect.attempt`; do not feed it events). */
  readonly reconnect: ReconnectRule;
  private nextId = 0;
  private nonce = 0;

  constructor(
    readonly shootCode: string,
    deviceId: string,
    options: ClientSessionOptions = {},
  ) {
    this.archerId = options.archerId ?? null;
    this.token = options.token ?? null;
    this.initial = options.initial ?? null;
    this.timings = { ...DEFAULT_SESSION_TIMINGS, ...options.timings };
    this.reconnect = new ReconnectRule(this.timings.backoffBaseS, this.timings.backoffCapS);
    this.outbox = options.outbox ?? new Outbox();
    this.replica = options.replica ?? new Replica();
    this.known = this.replicaRegisters();
    this.clock = new HybridClock(deviceId);
    for (const r of this.outbox.pending()) this.clock.observe(r.stamp);
    for (const r of this.outbox.seenAll()) this.clock.observe(r.stamp);
    if (this.outbox.clock !== null) this.clock.observe(this.outbox.clock);
    this.edits = new CarriedEdits(deviceId);
    if (this.archerId !== null) {
      const last = mergeRegisters(this.outbox.seen(this.archerId), this.outbox.get(this.archerId));
      if (last !== null && this.edits.mine(last)) this.edits.remember(last);
    }
  }

  // -- what the user reads -----------------------------------------------------------------

  /** Every archer's visible register: the replica overlaid with this device's newer writes. */
  registers(): Map<string, WireRegister> {
    const registers = new Map(this.known);
    if (this.archerId !== null) {
      const own = mergeRegisters(registers.get(this.archerId), this.outbox.seen(this.archerId));
      if (own) registers.set(this.archerId, own);
    }
    for (const pending of this.outbox.pending()) {
      registers.set(pending.archer, mergeRegisters(registers.get(pending.archer), pending)!);
    }
    return registers;
  }

  /** One archer's visible register. */
  visible(archer: string): WireRegister | null {
    let current = this.known.get(archer) ?? null;
    if (archer === this.archerId) current = mergeRegisters(current, this.outbox.seen(archer));
    return mergeRegisters(current, this.outbox.get(archer));
  }

  /** Live, with every write acknowledged. */
  get synced(): boolean {
    return this.phase === "live" && this.outbox.size === 0;
  }

  /** When timerFired is due next (Infinity: never). */
  get nextTimer(): number {
    return this.deadline();
  }

  // -- events ------------------------------------------------------------------------------

  connected(now: number): Action[] {
    if (this.phase === "closed") return [{ kind: "close", code: "closed", message: "The session was refused for good.", fatal: true }];
    this.phase = "hello_sent";
    const bucket = new TokenBucket(WRITES_BURST, WRITES_PER_S, now);
    this.conn = new Link(now, now, now, bucket);
    const hello: ClientMessage = {
      type: "hello",
      shoot: this.shootCode,
      role: this.archerId ? "archer" : "viewer",
      sv: this.replica.stateVector(),
      archer: this.archerId,
      token: this.archerId ? this.token : null,
    };
    return [{ kind: "send", message: hello }, this.timer()];
  }

  /** The connection, or an attempt at one, ended at `now` (`jitter`: uniform in [0, 1), drawn
   * by the driver). Unanswered writes stay pending; after a fatal close code the session is
   * over for good, else the next dial is due at the returned `reconnect`. */
  disconnected(now: number, jitter: number, closeCode: number | null = null): Action[] {
    this.conn = null;
    if (closeCode !== null && FATAL_CLOSE_CODES.has(closeCode)) this.phase = "closed";
    if (this.phase === "closed") return [this.timer()];
    this.phase = "offline";
    return [{ kind: "reconnect", at: this.reconnect.dropped(now, jitter) }, this.timer()];
  }

  /** The device's network is back: while offline, the attempts start afresh and the next dial is now. */
  online(now: number): Action[] {
    if (this.phase !== "offline") return [this.timer()];
    return [{ kind: "reconnect", at: this.reconnect.online(now) }, this.timer()];
  }

  /** A frame from the relay (the driver has bounded its size). */
  frameReceived(data: Uint8Array | string, now: number, wallMs: number): Action[] {
    if (typeof data === "string") return this.close("malformed", "The relay sent a text frame.");
    let message: ServerMessage;
    try {
      message = readServerFrame(data);
    } catch (exc) {
      if (exc instanceof FrameError) return this.close(exc.code, exc.message);
      throw exc;
    }
    return this.received(message, now, wallMs);
  }

  received(message: ServerMessage, now: number, wallMs: number): Action[] {
    const conn = this.conn;
    if (conn === null) return [];
    conn.lastReceived = now;
    this.wallMs = wallMs;
    if (this.phase === "hello_sent") {
      if (message.type === "welcome") return this.onWelcome(message.shoot, message.reset, message.update, now);
      if (message.type === "error") return this.close(message.code, message.message, FATAL_CODES.has(message.code));
      return this.close("unexpected", "The relay did not answer hello.");
    }
    const actions: Action[] = [];
    switch (message.type) {
      case "update":
        try {
          this.replica.applyUpdate(message.update);
        } catch {
          return this.close("invalid_update", UNAPPLIABLE_UPDATE);
        }
        actions.push(...this.afterReplicaChange());
        break;
      case "ack":
        actions.push(...this.onAck(message.id, message.archer, message.stamp));
        break;
      case "superseded":
        conn.inflight.delete(message.id);
        actions.push(...this.adopt(message.winner));
        break;
      case "error":
        if (message.id === null) actions.push({ kind: "relayError", code: message.code, message: message.message });
        else actions.push(...this.onWriteError(message.id, message.code, message.message, message.serverMs, now, wallMs));
        break;
      case "notice": {
        const { kind, round, archer, text, ends } = message;
        actions.push({ kind: "notice", notice: { kind, round, archer, text, ends } });
        break;
      }
      default:
        break;
    }
    actions.push(this.timer());
    return actions;
  }

  timerFired(now: number, _wallMs: number): Action[] {
    const conn = this.conn;
    if (conn === null) return [this.timer()];
    if (this.phase === "hello_sent") {
      if (now >= conn.opened + this.timings.connectTimeoutS) return this.close("timeout", "The relay did not answer hello in time.");
      return [this.timer()];
    }
    const actions = this.heartbeat(conn, now);
    if (actions.length > 0 && actions[0]!.kind === "close") return actions;
    actions.push(...this.sendDue(conn, now), this.timer());
    return actions;
  }

  /** A local edit: `change` maps the archer's visible state to the new one. Throws
   * WriteUnavailable (a viewer, or no state to build on), or whatever `change` throws. */
  write(change: (state: ArcherState) => ArcherState, now: number, wallMs: number): [WireRegister, Action[]] {
    void now;
    const archer = this.archerId;
    if (archer === null) throw new WriteUnavailable("read_only", "Viewers cannot score; join as an archer.");
    const current = this.visible(archer);
    const base = current !== null ? current.state : this.initial;
    if (base === null) throw new WriteUnavailable("no_state", "This device has not seen the archer's scores yet; connect to the relay once.");
    const state = change(base);
    const register: WireRegister = { archer, stamp: this.clock.now(wallMs), state };
    const pending = this.outbox.get(archer);
    // The pending write had already lost to `current` (another device's state) and is
    // replaced now, unsent: say so unless `current` holds it.
    const lost = pending !== null && current !== null && !sameRegister(current, pending) ? replaced(pending, current) : [];
    // Replaced, not merged: the new state was built on the pending one, and after a
    // clock_skew correction its stamp may be the smaller.
    this.outbox.replace(register);
    this.edits.remember(register);
    return [register, [this.save(), { kind: "changed", archers: [archer], source: "local" }, ...lost, this.timer()]];
  }

  // -- what arrives ------------------------------------------------------------------------

  private onWelcome(shoot: ShootInfo, reset: boolean, update: Uint8Array, now: number): Action[] {
    if (reset) this.resets += 1;
    try {
      this.replica.applyWelcome(reset, update);
    } catch {
      return this.close("invalid_update", UNAPPLIABLE_UPDATE);
    }
    const actions = this.sameShoot(shoot.shootId);
    this.shoot = shoot;
    this.phase = "live";
    this.connections += 1;
    this.reconnect.welcomed();
    this.conn!.bucket = new TokenBucket(WRITES_BURST, WRITES_PER_S, now);
    actions.push({ kind: "welcomed", shoot, reset });
    if (reset && this.archerId !== null) {
      this.outbox.resetSeen(this.archerId, this.replicaRegisters().get(this.archerId) ?? null);
      actions.push(this.save());
    }
    actions.push(...this.afterReplicaChange(), this.timer());
    return actions;
  }

  /** Bind the outbox to the welcomed shoot; empty it first if it held another's. */
  private sameShoot(shootId: string): Action[] {
    if (this.outbox.shootId === shootId) return [];
    if (this.outbox.shootId !== null) {
      // The code names another shoot now (codes are reused on later days): the writes kept
      // were for the old one, and must never reach this one.
      this.outbox.clear();
      this.edits.clear();
    }
    this.outbox.shootId = shootId;
    return [this.save()];
  }

  private replicaRegisters(): Map<string, WireRegister> {
    const out = new Map<string, WireRegister>();
    for (const [archer, a] of this.replica.archers()) out.set(archer, { archer, stamp: a.stamp, state: a.state });
    return out;
  }

  private afterReplicaChange(): Action[] {
    const before = this.known;
    const after = this.replicaRegisters();
    this.known = after;
    const changed = [...new Set([...after.keys(), ...before.keys()])].filter((a) => !sameRegister(after.get(a), before.get(a))).sort();
    const actions: Action[] = [];
    const own = this.archerId !== null ? (after.get(this.archerId) ?? null) : null;
    if (own !== null) {
      this.clock.observe(own.stamp);
      actions.push(...this.see(own));
    }
    if (changed.length > 0) actions.push({ kind: "changed", archers: changed, source: "relay" });
    return actions;
  }

  /** The relay holds `register` for this device's archer. */
  private see(register: WireRegister): Action[] {
    if (!this.outbox.see(register)) return [];
    return [this.save(), ...this.checkCarried(register)];
  }

  /** `value` is the archer's state at the relay now: report this device's last edit if
   * `value` dropped it, or write it again if an older one of its won. */
  private checkCarried(value: WireRegister): Action[] {
    const found = this.edits.seen(value, this.outbox.get(value.archer) !== null);
    if (found instanceof Rewrite) return this.rewrite(found.newest);
    return found === null ? [] : [found];
  }

  private onAck(id: number, archer: string, stamp: Stamp): Action[] {
    const sent = this.conn!.inflight.get(id);
    this.conn!.inflight.delete(id);
    this.clock.observe(stamp);
    const acked = this.outbox.acknowledge(archer, stamp);
    if (acked === null) {
      // A write a newer one replaced in the outbox before its ack came (an archer scoring
      // faster than acks return) is durable all the same: say so, once.
      if (sent === undefined || !sameStamp(sent.stamp, stamp) || !this.edits.firstAck(sent)) return [];
      return [{ kind: "acked", register: sent }];
    }
    this.edits.firstAck(acked);
    const actions: Action[] = [this.save(), { kind: "acked", register: acked }];
    const seen = this.outbox.seen(archer);
    // Another device's newer state may have arrived while this write waited.
    if (seen !== null) actions.push(...this.checkCarried(seen));
    return actions;
  }

  /** A newer state won over a write of this device's (a `superseded` answer). */
  private adopt(winner: WireRegister): Action[] {
    this.clock.observe(winner.stamp);
    // With nothing pending, an acknowledged write of this device's may be what lost.
    const actions = this.archerId === winner.archer ? this.see(winner) : [];
    const dropped = this.outbox.adopt(winner);
    actions.push(this.save());
    if (dropped !== null && this.edits.staleOwn(winner, dropped)) {
      actions.push(...this.rewrite(dropped));
    } else if (dropped !== null) {
      const lost = replaced(dropped, winner);
      if (lost.length > 0) this.edits.forget(winner.archer);
      actions.push(...lost);
    }
    const seen = this.outbox.seen(winner.archer);
    // The winner held this device's edit, but a newer state may not any more.
    if (seen !== null && this.archerId === winner.archer) actions.push(...this.checkCarried(seen));
    actions.push({ kind: "changed", archers: [winner.archer], source: "relay" });
    return actions;
  }

  private onWriteError(id: number, code: string, message: string, serverMs: number | null, now: number, wallMs: number): Action[] {
    const conn = this.conn!;
    const sent = conn.inflight.get(id);
    if (sent === undefined) return [];
    conn.inflight.delete(id);
    const pending = this.outbox.get(sent.archer);
    const stillPending = pending !== null && sameStamp(pending.stamp, sent.stamp);
    if (code === "rate_limited") {
      // The relay's bucket is empty: empty ours too, and make the write due again.
      conn.bucket.tokens = 0;
      conn.bucket.updated = now;
      const last = conn.sent.get(sent.archer);
      if (last !== undefined && sameStamp(last[0], sent.stamp)) conn.sent.delete(sent.archer);
      return [];
    }
    if (code === "clock_skew" && serverMs !== null) {
      this.clock.correct(wallMs, serverMs);
      if (!stillPending) return [];
      const restamped: WireRegister = { archer: sent.archer, stamp: this.clock.now(wallMs), state: sent.state };
      this.outbox.replace(restamped); // due at once
      this.edits.remember(restamped);
      return [this.save()];
    }
    if (!stillPending) return [];
    this.outbox.discard(sent.archer, sent.stamp);
    return [this.save(), { kind: "refused", register: sent, code, message }, { kind: "changed", archers: [sent.archer], source: "relay" }];
  }

  // -- what goes out -----------------------------------------------------------------------

  private heartbeat(conn: Link, now: number): Action[] {
    switch (conn.heartbeat(now, this.timings)) {
      case "dead":
        return this.close("heartbeat_timeout", "The relay stopped answering; reconnecting.");
      case "ping":
        this.nonce += 1;
        return [{ kind: "send", message: { type: "ping", nonce: this.nonce } }];
      default:
        return [];
    }
  }

  /** Every due write the bucket allows, oldest first. */
  private sendDue(conn: Link, now: number): Action[] {
    const actions: Action[] = [];
    for (const register of this.outbox.pending()) {
      if (conn.dueAt(register, this.timings.resendAfterS) > now) continue;
      if (!conn.bucket.tryTake(now)) break;
      this.nextId += 1;
      conn.inflight.set(this.nextId, register);
      conn.sent.set(register.archer, [register.stamp, now]);
      conn.lastSent = now;
      actions.push({ kind: "send", message: { type: "write", id: this.nextId, register } });
    }
    return actions;
  }

  private deadline(): number {
    const conn = this.conn;
    if (conn === null) return Infinity;
    return conn.deadline(this.timings, this.outbox.pending(), this.phase === "hello_sent");
  }

  private timer(): Action {
    return { kind: "timer", at: this.deadline() };
  }

  // -- plumbing ----------------------------------------------------------------------------

  private close(code: string, message: string, fatal = false): Action[] {
    this.conn = null;
    this.phase = fatal ? "closed" : "offline";
    return [{ kind: "close", code, message, fatal }, this.timer()];
  }

  /** Write this device's last edit again, stamped above every stamp seen (the stale
   * winner's included): it replaces the older edit that won. */
  private rewrite(newest: WireRegister): Action[] {
    const restamped: WireRegister = { archer: newest.archer, stamp: this.clock.now(this.wallMs), state: newest.state };
    this.outbox.replace(restamped); // a new stamp: due at once
    this.edits.remember(restamped);
    return [this.save(), { kind: "changed", archers: [newest.archer], source: "local" }];
  }

  private save(): Action {
    this.outbox.clock = this.clock.last;
    return { kind: "saveOutbox" };
  }
}

