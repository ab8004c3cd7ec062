// One connection's share of a client session: what lives only as long as the connection,
// and the timing rules that read it. A port of sync/client_link.py, rule for rule; it is its
// own module so that clientSession.ts keeps the same shape as sync/client_session.py.
//
// ClientSession keeps one Link while it is connected and drops it when the connection ends,
// so nothing here can leak from one connection into the next: the requests in flight, what
// was sent when, the write bucket and the heartbeat. The rules here only answer questions
// about time (is a ping due, is the relay dead, when must a write go out again, when should
// the driver wake the session next); what to do about the answers is the session's.
import type { SessionTimings, TokenBucket } from "./clientActions";
import { sameStamp } from "./clock";
import type { WireRegister } from "./messages";
import type { Stamp } from "./types";

/** What lives only as long as one connection. */
export class Link {
  /** When the unanswered `ping` went out, if one is out. */
  pingAt: number | null = null;
  /** Writes sent and not answered yet, by request id. */
  readonly inflight = new Map<number, WireRegister>();
  /** Per archer: the stamp last sent on this connection, and when. */
  readonly sent = new Map<string, [Stamp, number]>();

  constructor(
    readonly opened: number,
    public lastSent: number,
    public lastReceived: number,
    public bucket: TokenBucket,
  ) {}

  /** Whether to send a `ping` now ("ping", noted as sent), whether the relay is dead
   * ("dead": nothing arrived `pongTimeoutS` after the ping), or neither. */
  heartbeat(now: number, timings: SessionTimings): "ping" | "dead" | null {
    if (this.pingAt !== null) {
      if (this.lastReceived >= this.pingAt) this.pingAt = null; // something came back: alive
      else if (now >= this.pingAt + timings.pongTimeoutS) return "dead";
      else return null;
    }
    // Quiet in either direction counts: a client resending writes into a dead connection
    // must still find out that nothing comes back.
    if (now < Math.min(this.lastSent, this.lastReceived) + timings.pingIntervalS) return null;
    this.pingAt = this.lastSent = now;
    return "ping";
  }

  /** When `register` must go out on this connection: at once if it was never sent on it (or
   * was re-stamped since), else `resendAfterS` after it was sent. */
  dueAt(register: WireRegister, resendAfterS: number): number {
    const sent = this.sent.get(register.archer);
    if (sent === undefined || !sameStamp(sent[0], register.stamp)) return -Infinity;
    return sent[1] + resendAfterS;
  }

  /** When the session must be woken next (its timer). */
  deadline(timings: SessionTimings, pending: Iterable<WireRegister>, awaitingWelcome: boolean): number {
    if (awaitingWelcome) return this.opened + timings.connectTimeoutS;
    let at: number;
    if (this.pingAt !== null) {
      // Anything received since the ping settles it at the next firing.
      at = this.pingAt + timings.pongTimeoutS;
      if (this.lastReceived >= this.pingAt) at = Math.min(this.lastSent, this.lastReceived) + timings.pingIntervalS;
    } else {
      at = Math.min(this.lastSent, this.lastReceived) + timings.pingIntervalS;
    }
    let due = Infinity;
    for (const r of pending) due = Math.min(due, this.dueAt(r, timings.resendAfterS));
    if (due < Infinity) {
      // The next token; a hair later, so that the bucket surely has it then.
      const b = this.bucket;
      const tokenAt = b.updated + b.retryAfter(b.updated);
      due = Math.max(due, tokenAt + (tokenAt > b.updated ? 1e-6 : 0));
    }
    return Math.min(at, due);
  }
}
