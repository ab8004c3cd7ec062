// When a client dials the relay again: the reconnect rule, a port of sync/reconnect.py.
// Full jitter (a delay drawn uniformly between zero and an exponential ceiling) spreads
// clients that lost a relay together into a ramp instead of a wall. The ceiling of the n-th
// failed attempt since the last welcome is min(cap, base * 2**n); a welcome starts afresh;
// the network coming back starts afresh and dials at once. Time and randomness come in as
// arguments (`jitter` uniform in [0, 1), drawn by the driver), so transcripts replay exactly.

/** Exponents beyond this change nothing once the cap is reached (and never overflow). */
const MAX_EXPONENT = 32;

/** The largest delay of attempt number `attempt` (0 for the first). */
export function fullJitterCeiling(attempt: number, baseS: number, capS: number): number {
  const exponent = Math.min(Math.max(attempt, 0), MAX_EXPONENT);
  return Math.min(capS, baseS * 2 ** exponent);
}

export class ReconnectRule {
  /** Connections that ended since the last `welcome` (or `online`). */
  attempt = 0;

  constructor(
    readonly baseS = 0.5,
    readonly capS = 30,
  ) {}

  /** A connection (or an attempt at one) ended at `now`: when to dial again. A jitter
   * outside [0, 1] is clamped, so a bad random source cannot dial in the past or wait for ever. */
  dropped(now: number, jitter: number): number {
    const ceiling = fullJitterCeiling(this.attempt, this.baseS, this.capS);
    this.attempt += 1;
    return now + Math.min(Math.max(jitter, 0), 1) * ceiling;
  }

  /** The relay answered hello: the next drop starts the schedule afresh. */
  welcomed(): void {
    this.attempt = 0;
  }

  /** The network is back: start afresh, and dial now. */
  online(now: number): number {
    this.attempt = 0;
    return now;
  }
}
