// What the client session machine (clientSession.ts) returns, and its settings: a port of
// sync/client_actions.py. The actions are plain values tagged by `kind`, one per thing a
// driver must do or tell its user; clientSession.ts's header says which event returns which.
import { helloFrame, pingFrame, writeFrame, type WireRegister } from "./messages";
import type { NoticeEvent, ShootInfo } from "./types";

/** Error codes (answering `hello`) after which reconnecting cannot help. */
export const FATAL_CODES: ReadonlySet<string> = new Set(["unknown_shoot", "invalid_code", "expired", "unauthorized"]);
/** WebSocket close codes after which the client does not reconnect (docs/protocol.md). */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([4401, 4404, 4410]);

/** The relay's write rate limit, mirrored by the client so a long outbox is paced. */
export const WRITES_BURST = 20;
export const WRITES_PER_S = 10;

/** The session's timers in seconds; the defaults follow docs/protocol.md. */
export interface SessionTimings {
  pingIntervalS: number;
  pongTimeoutS: number;
  resendAfterS: number;
  /** How long after `hello` the `welcome` may take. */
  connectTimeoutS: number;
  /** The ceiling of the first reconnect delay (reconnect.ts). */
  backoffBaseS: number;
  /** The largest reconnect delay. */
  backoffCapS: number;
}

export const DEFAULT_SESSION_TIMINGS: SessionTimings = { pingIntervalS: 15, pongTimeoutS: 10, resendAfterS: 10, connectTimeoutS: 10, backoffBaseS: 0.5, backoffCapS: 30 };

export type Phase = "offline" | "hello_sent" | "live" | "closed";

export type ClientMessage =
  | { type: "hello"; shoot: string; role: "archer" | "viewer"; sv: Uint8Array; archer: string | null; token: string | null }
  | { type: "write"; id: number; register: WireRegister }
  | { type: "ping"; nonce: number };

/** The bytes of one binary frame carrying `message`. */
export function encodeClientMessage(message: ClientMessage): Uint8Array<ArrayBuffer> {
  switch (message.type) {
    case "hello":
      return helloFrame(message);
    case "write":
      return writeFrame(message.id, message.register);
    case "ping":
      return pingFrame(message.nonce);
  }
}

export type Action =
  /** Send this message as one frame. */
  | { kind: "send"; message: ClientMessage }
  /** The outbox changed: keep it durably before carrying out the next actions. */
  | { kind: "saveOutbox" }
  /** These archers' visible registers changed (redraw); sorted. */
  | { kind: "changed"; archers: string[]; source: "local" | "relay" }
  /** The session is live; `reset`: the replica was replaced by the relay's full state. */
  | { kind: "welcomed"; shoot: ShootInfo; reset: boolean }
  /** This write is durable on the relay and left the outbox. */
  | { kind: "acked"; register: WireRegister }
  /** An edit of this device's is gone: `winner` (another device's newer state, which does not
   * contain it) replaced `lost`; `acknowledged`: the relay had acknowledged `lost` first. */
  | { kind: "replaced"; lost: WireRegister; winner: WireRegister; acknowledged: boolean }
  /** The relay refused this write for a rule it breaks; it left the outbox. */
  | { kind: "refused"; register: WireRegister; code: string; message: string }
  | { kind: "notice"; notice: NoticeEvent }
  /** An `error` about the session, not about one write; the session goes on. */
  | { kind: "relayError"; code: string; message: string }
  /** Close the connection (then call `disconnected`); `fatal`: do not reconnect. */
  | { kind: "close"; code: string; message: string; fatal: boolean }
  /** Dial the relay at `at` (monotonic seconds), then call `connected`; replaces the previous
   * request. None comes once the session is closed for good. */
  | { kind: "reconnect"; at: number }
  /** Call `timerFired` at `at` (monotonic seconds; Infinity: no timer). */
  | { kind: "timer"; at: number };

/** A write this device cannot make: `read_only` (a viewer) or `no_state` (it never saw its
 * archer's state). Thrown by ClientSession.write; nothing changed. */
export class WriteUnavailable extends Error {
  constructor(
    readonly code: "read_only" | "no_state",
    message: string,
  ) {
    super(message);
    this.name = "WriteUnavailable";
  }
}

/** Whether `winner` still holds what `lost` wrote: the same round, `lost`'s arrows as its
 * first ones, and `lost`'s finish kept. */
export function includes(winner: WireRegister, lost: WireRegister): boolean {
  const a = winner.state;
  const b = lost.state;
  return (
    a.round === b.round &&
    a.arrows.length >= b.arrows.length &&
    b.arrows.every((arrow, i) => a.arrows[i] === arrow) &&
    (a.finished || !b.finished) &&
    (a.left || !b.left)
  );
}

/** Allows `burst` events at once and `rate` per second after that (sync.limits.TokenBucket). */
export class TokenBucket {
  tokens: number;
  constructor(
    readonly burst: number,
    readonly rate: number,
    public updated: number,
  ) {
    this.tokens = burst;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updated);
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
    this.updated = now;
  }

  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Seconds until the next token. */
  retryAfter(now: number): number {
    this.refill(now);
    return Math.max(0, (1 - this.tokens) / this.rate);
  }
}
