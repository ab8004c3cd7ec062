// The outbox's durable store: this device's writes the relay has not acknowledged, kept in
// IndexedDB so a reload or a browser restart loses nothing. The rules themselves (what
// enters and leaves it) are outboxState.ts, a port of sync/outbox.py.
import { idbDelete, idbGet, idbPut } from "./idb";
import { Outbox, type OutboxRecord } from "./outboxState";

export { Outbox, compareRegisters, mergeRegisters, sameRegister } from "./outboxState";
export type { OutboxRecord } from "./outboxState";

/** Where one outbox lives: the IndexedDB store `outbox`, under a key naming its shoot. */
export class OutboxStore {
  private chain: Promise<void> = Promise.resolve();
  /** True when IndexedDB could not be opened: writes are kept in memory only. */
  memoryOnly = false;

  constructor(readonly key: string) {}

  async load(): Promise<Outbox> {
    return Outbox.fromRecord((await idbGet("outbox", this.key)) as OutboxRecord | undefined);
  }

  /** Save a snapshot of the outbox; saves complete in the order they were asked for. */
  save(outbox: Outbox): Promise<void> {
    if (this.memoryOnly) return Promise.resolve();
    const record = outbox.toRecord(); // taken now: later changes belong to later saves
    const next = this.chain.then(() => idbPut("outbox", this.key, record));
    this.chain = next.catch(() => undefined);
    return next;
  }

  async remove(): Promise<void> {
    await idbDelete("outbox", this.key);
  }
}
