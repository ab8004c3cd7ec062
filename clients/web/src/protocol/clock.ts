// The hybrid logical clock (sync/clock.py, docs/protocol.md "Stamps and the merge"): stamps
// follow the wall clock but never run backwards, and move past every stamp the device sees.
import type { Stamp } from "./types";

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

export class HybridClock {
  private lastStamp: Stamp;

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

  /** A stamp larger than every stamp issued or observed before. */
  now(wallMs: number): Stamp {
    const wall = Math.floor(wallMs) + this.offsetMs;
    const [lastWall, lastCounter] = this.lastStamp;
    const stamp: Stamp = wall > lastWall ? [wall, 0, this.deviceId] : [lastWall, lastCounter + 1, this.deviceId];
    this.lastStamp = stamp;
    return stamp;
  }

  /** Move past a stamp seen elsewhere, so the next one issued is larger. */
  observe(seen: Stamp): void {
    const [wall, counter] = seen;
    const [lastWall, lastCounter] = this.lastStamp;
    if (wall > lastWall || (wall === lastWall && counter > lastCounter)) this.lastStamp = [wall, counter, this.deviceId];
  }

  /** Adopt the relay's time after a skew refusal; stamps observed ahead of it are forgotten. */
  correct(wallMs: number, serverMs: number): void {
    this.offsetMs = serverMs - Math.floor(wallMs);
    if (this.lastStamp[0] > serverMs) this.lastStamp = [serverMs, 0, this.deviceId];
  }
}
