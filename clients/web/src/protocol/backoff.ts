// Reconnect delays: exponential backoff with full jitter (clients/_backoff.py). After a
// relay restart every client reconnects at once; a delay drawn uniformly between zero and
// the exponential cap spreads them into a ramp instead of a wall.
export class Backoff {
  constructor(
    readonly baseMs = 500,
    readonly capMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {}

  delay(attempt: number): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(attempt, 32));
    return this.random() * ceiling;
  }
}
