// The hybrid logical clock, a line-for-line port of sync/clock.py (docs/protocol.md "Stamps
// and the merge"): stamps follow the wall clock but never run backwards, and move past every
// stamp the device sees. After a `clock_skew` refusal the clock forgets only the stamps the
// relay cannot hold (beyond its time plus the bound) and keeps the largest one within it, so
// a re-stamped write still beats the archer's write from another device that the relay
// already holds. tests/test_web_clock.py checks both clocks on shared operation sequences
// (test/fixtures/clock.json).
import type { Stamp } from "./types";

/** How far ahead of the relay's clock a write may be stamped (5 minutes, as the relay). */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Stamps a clock remembers for `correct()` (sync.clock.RECENT_STAMPS). */
export const RECENT_STAMPS = 32;

/** Stamp order: wall time, then counter, then device id. */
export function compareStamps(a: Stamp, b: Stamp): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  if (a[2] !== b[2]) return a[2] < b[2] ? -1 : 1;
  return 0;
}

export function sameStamp(a: Stamp, b: Stamp): boolean {
  return compareStamps(a, b) === 0;
}

function maxStamp(a: Stamp, b: Stamp): Stamp {
  return compareStamps(a, b) >= 0 ? a : b;
}

export class HybridClock {
  private lastStamp: Stamp;
  // The stamps issued or observed lately, newest last (not in order: a stamp observed below
  // `lastStamp` is kept too), and the largest of those that fell out.
  private recent: Stamp[] = [];
  private evicted: Stamp | null = null;

  constructor(
    readonly deviceId: string,
    /** Added to the wall clock; set from the relay's time after `clock_skew`. */
    public offsetMs = 0,
  ) {
    this.lastStamp = [0, 0, deviceId];
  }

  /** The largest stamp issued or observed so far. */
  get last(): Stamp {
    return this.lastStamp;
  }

  private advance(stamp: Stamp): void {
    this.lastStamp = stamp;
    this.remember(stamp);
  }

  private remember(stamp: Stamp): void {
    if (this.recent.length === RECENT_STAMPS) {
      const oldest = this.recent.shift()!;
      this.evicted = this.evicted === null ? oldest : maxStamp(this.evicted, oldest);
    }
    this.recent.push(stamp);
  }

  /** A stamp larger than every stamp issued or observed before. */
  now(wallMs: number): Stamp {
    const wall = Math.floor(wallMs) + this.offsetMs;
    const [lastWall, lastCounter] = this.lastStamp;
    const stamp: Stamp = wall > lastWall ? [wall, 0, this.deviceId] : [lastWall, lastCounter + 1, this.deviceId];
    this.advance(stamp);
    return stamp;
  }

  /** Move past a stamp seen elsewhere, so the next one issued is larger. */
  observe(seen: Stamp): void {
    const own: Stamp = [seen[0], seen[1], this.deviceId];
    const [lastWall, lastCounter] = this.lastStamp;
    if (seen[0] > lastWall || (seen[0] === lastWall && seen[1] > lastCounter)) {
      this.advance(own);
    } else {
      // Below the clock now, but a correction may forget everything above it: the relay may
      // hold this stamp, so the corrected clock must still beat it.
      this.remember(own);
    }
  }

  /**
   * Adopt the relay's time after a `clock_skew` refusal. Stamps beyond `serverMs + maxSkewMs`
   * are forgotten (the relay never accepted them); every stamp within it is kept (the relay
   * may hold it), so the next stamp is still larger than all of them.
   */
  correct(wallMs: number, serverMs: number, maxSkewMs: number = MAX_CLOCK_SKEW_MS): void {
    this.offsetMs = serverMs - Math.floor(wallMs);
    const bound = serverMs + maxSkewMs;
    if (this.lastStamp[0] <= bound) return;
    const kept = this.recent.filter((stamp) => stamp[0] <= bound);
    if (this.evicted !== null) {
      if (this.evicted[0] <= bound) kept.push(this.evicted);
      // Stamps within the bound may have fallen out of memory: stay at the bound, above
      // anything the relay can hold (the relay still accepts it).
      else kept.push([bound, 0, this.deviceId]);
    }
    this.lastStamp = kept.reduce<Stamp>(maxStamp, [0, 0, this.deviceId]);
    this.recent = this.recent.filter((stamp) => stamp[0] <= bound);
  }
}
