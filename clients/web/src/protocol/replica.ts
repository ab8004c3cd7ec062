// The device's copy of a shoot's Yjs document. Only the relay writes the document; the
// replica applies the relay's updates in order and reads archers out of it.
//
// The reset rule (docs/protocol.md): a welcome with `reset` means this replica holds items
// the relay never persisted, so it is replaced by a new document built from the welcome's
// full state. Zero-length updates are skipped (Yjs throws on them).
import * as Y from "yjs";
import type { Arrow, ArcherState, Derived, ShootInfo, Stamp } from "./types";

export interface ReplicaArcher {
  state: ArcherState;
  stamp: Stamp;
  derived: Derived | null;
}

function toArrow(v: unknown): Arrow {
  return v === "X" || v === "M" ? v : Number(v);
}

/** `derived` as the actor writes it: [handicap, predicted, classification, status]. */
export function derivedFromDoc(v: unknown): Derived | null {
  if (!Array.isArray(v) || v.length < 4) return null;
  const [handicap, predicted, classification, status] = v as unknown[];
  return {
    handicap: typeof handicap === "number" ? handicap : null,
    predicted: typeof predicted === "number" ? predicted : null,
    classification: typeof classification === "string" ? classification : null,
    status: status === "on_track" || status === "achieved" ? status : null,
  };
}

function archerFromDoc(fields: Record<string, unknown>): ReplicaArcher | null {
  const stamp = fields.stamp;
  if (!Array.isArray(stamp) || stamp.length !== 3) return null;
  const arrows = Array.isArray(fields.arrows) ? fields.arrows : [];
  return {
    state: {
      name: String(fields.name ?? ""),
      round: String(fields.round ?? ""),
      profile: { bowstyle: String(fields.bowstyle ?? ""), age_group: String(fields.age_group ?? ""), gender: String(fields.gender ?? "") },
      arrows: arrows.map(toArrow),
      finished: fields.finished === true,
      left: fields.left === true,
    },
    stamp: [Number(stamp[0]), Number(stamp[1]), String(stamp[2])],
    derived: derivedFromDoc(fields.derived),
  };
}

export class Replica {
  private doc = new Y.Doc();
  private cache: Map<string, ReplicaArcher> | null = null;
  /** Welcomes that said `reset` (the replica was replaced by the relay's full state). */
  resets = 0;

  /** A replica restored from a saved full state (IndexedDB), or empty. */
  constructor(saved?: Uint8Array | null) {
    if (saved && saved.byteLength > 0) Y.applyUpdate(this.doc, saved);
  }

  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /** The whole document as one update, to save and restore. */
  snapshot(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }

  applyWelcome(reset: boolean, update: Uint8Array): void {
    if (reset) {
      this.doc.destroy();
      this.doc = new Y.Doc();
      this.resets += 1;
    }
    this.applyUpdate(update);
    this.cache = null;
  }

  applyUpdate(update: Uint8Array): void {
    if (update.byteLength === 0) return;
    Y.applyUpdate(this.doc, update);
    this.cache = null;
  }

  archers(): ReadonlyMap<string, ReplicaArcher> {
    if (this.cache === null) {
      const cache = new Map<string, ReplicaArcher>();
      const raw = this.doc.getMap("archers").toJSON() as Record<string, Record<string, unknown>>;
      for (const [id, fields] of Object.entries(raw)) {
        const archer = archerFromDoc(fields);
        if (archer) cache.set(id, archer);
      }
      this.cache = cache;
    }
    return this.cache;
  }

  shoot(): ShootInfo | null {
    const m = this.doc.getMap("meta").toJSON() as Record<string, unknown>;
    if (typeof m.code !== "string" || typeof m.shoot_id !== "string") return null;
    return {
      code: m.code,
      shootId: m.shoot_id,
      title: String(m.title ?? ""),
      creator: String(m.creator ?? ""),
      createdMs: Number(m.created_ms),
      expiresMs: Number(m.expires_ms),
      timeZone: String(m.time_zone ?? "UTC"),
    };
  }
}
