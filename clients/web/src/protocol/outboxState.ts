// The outbox's rules, without the store: a port of sync/outbox.py (the client session
// machine, clientSession.ts, decides with it; keeping it in IndexedDB is outbox.ts's job).
//
// - A write is the archer's whole state, so only the newest pending write per archer
//   matters; a newer one replaces the older (by the register merge).
// - A write leaves the outbox only on an `ack` naming its stamp, on a winner at least as new
//   (`superseded`), or on a refusal for a rule it breaks.
// - It also remembers the newest value seen per archer and the clock's last stamp, so a
//   device that restarts offline builds its next write on the right state and never issues
//   a smaller stamp than before.
import { compareBytes, canonicalState } from "./canonical";
import { compareStamps, sameStamp } from "./clock";
import type { WireRegister } from "./messages";
import type { Stamp } from "./types";

const VERSION = 1;

/** The merge order: stamp first, then the canonical CBOR bytes of the state (canonical.ts). */
export function compareRegisters(a: WireRegister, b: WireRegister): number {
  const byStamp = compareStamps(a.stamp, b.stamp);
  if (byStamp !== 0) return byStamp;
  return compareBytes(canonicalState(a.state), canonicalState(b.state));
}

/** Whether two registers hold the same state, whatever their stamps. */
export function sameState(a: WireRegister, b: WireRegister): boolean {
  return compareBytes(canonicalState(a.state), canonicalState(b.state)) === 0;
}

/** Whether two registers are the same value (archer, stamp and state). */
export function sameRegister(a: WireRegister | null | undefined, b: WireRegister | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.archer === b.archer && compareRegisters(a, b) === 0;
}

/** The winner of two registers of one archer (null is the empty register). */
export function mergeRegisters(a: WireRegister | null | undefined, b: WireRegister | null | undefined): WireRegister | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return compareRegisters(a, b) >= 0 ? a : b;
}

export interface OutboxRecord {
  version: number;
  shootId: string | null;
  pending: WireRegister[];
  seen: WireRegister[];
  clock: Stamp | null;
}

export class Outbox {
  private readonly pendingByArcher = new Map<string, WireRegister>();
  private readonly seenByArcher = new Map<string, WireRegister>();
  clock: Stamp | null = null;
  /** The shoot these writes belong to (a code is reused on other days). */
  shootId: string | null = null;

  static fromRecord(record: OutboxRecord | null | undefined): Outbox {
    const outbox = new Outbox();
    if (!record || record.version !== VERSION) return outbox;
    for (const r of record.pending) outbox.put(r);
    for (const r of record.seen) outbox.see(r);
    outbox.clock = record.clock;
    outbox.shootId = record.shootId;
    return outbox;
  }

  toRecord(): OutboxRecord {
    return { version: VERSION, shootId: this.shootId, pending: this.pending(), seen: [...this.seenByArcher.values()], clock: this.clock };
  }

  /** Pending writes, oldest stamp first (the order to resend them in). */
  pending(): WireRegister[] {
    return [...this.pendingByArcher.values()].sort(compareRegisters);
  }

  get size(): number {
    return this.pendingByArcher.size;
  }

  get(archer: string): WireRegister | null {
    return this.pendingByArcher.get(archer) ?? null;
  }

  seen(archer: string): WireRegister | null {
    return this.seenByArcher.get(archer) ?? null;
  }

  /** Queue a write; it replaces an older pending write of the same archer. */
  put(register: WireRegister): boolean {
    const current = this.pendingByArcher.get(register.archer);
    if (current && mergeRegisters(current, register) === current) return false;
    this.pendingByArcher.set(register.archer, register);
    return true;
  }

  /** Swap the pending write for a re-stamped one (after `clock_skew`). */
  replace(register: WireRegister): void {
    this.pendingByArcher.set(register.archer, register);
  }

  /** Drop the pending write if it has this stamp (durable on the relay); returns it. */
  acknowledge(archer: string, stamp: Stamp): WireRegister | null {
    const current = this.pendingByArcher.get(archer);
    if (!current || !sameStamp(current.stamp, stamp)) return null;
    this.pendingByArcher.delete(archer);
    this.see(current);
    return current;
  }

  /** Drop the pending write with this stamp (the relay refused it). */
  discard(archer: string, stamp: Stamp): boolean {
    const current = this.pendingByArcher.get(archer);
    if (!current || !sameStamp(current.stamp, stamp)) return false;
    this.pendingByArcher.delete(archer);
    return true;
  }

  /** Record a winner; drop the pending write if the winner is at least as new (returned). */
  adopt(winner: WireRegister): WireRegister | null {
    this.see(winner);
    const current = this.pendingByArcher.get(winner.archer);
    if (current && compareRegisters(winner, current) >= 0) {
      this.pendingByArcher.delete(winner.archer);
      return current;
    }
    return null;
  }

  /**
   * Forget what was seen of `archer` beyond `register`: after a reset the relay's full state
   * is the truth, and a value seen before may be one the crashed relay lost.
   */
  resetSeen(archer: string, register: WireRegister | null): void {
    if (register === null) this.seenByArcher.delete(archer);
    else this.seenByArcher.set(archer, register);
  }

  seenAll(): WireRegister[] {
    return [...this.seenByArcher.values()];
  }

  /** Remember a value seen from the relay; true if it was news. */
  see(register: WireRegister): boolean {
    const current = this.seenByArcher.get(register.archer);
    if (current && mergeRegisters(current, register) === current) return false;
    this.seenByArcher.set(register.archer, register);
    return true;
  }

  /** Forget every write and every value seen (the code now names another shoot). The
   * clock's high-water mark stays: stamps never go back. */
  clear(): void {
    this.pendingByArcher.clear();
    this.seenByArcher.clear();
  }
}
