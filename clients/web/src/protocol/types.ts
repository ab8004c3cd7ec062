// The public types of the protocol module: exactly the wire's shapes (docs/protocol.md),
// in the names the views and the fast app use.

/** An arrow as scored: a ring value, "X" (inner ten, scores 10) or "M" (miss, 0). */
export type Arrow = number | "X" | "M";

export interface Profile {
  bowstyle: string;
  age_group: string;
  gender: string;
}

/** An archer's whole state, exactly the wire register's `state`. */
export interface ArcherState {
  name: string;
  round: string;
  profile: Profile;
  arrows: Arrow[];
  finished: boolean;
  left: boolean;
}

/** A hybrid logical clock timestamp; larger wins, compared field by field. */
export type Stamp = [wallMs: number, counter: number, deviceId: string];

/** What only the relay can compute (archeryutils), written beside each archer's state. */
export interface Derived {
  handicap: number | null;
  predicted: number | null;
  classification: string | null;
  status: "on_track" | "achieved" | null;
}

export interface ArcherEntry {
  id: string;
  state: ArcherState;
  stamp: Stamp;
  /** null while the relay has not computed it (e.g. an unacknowledged local write). */
  derived: Derived | null;
}

export interface ShootInfo {
  code: string;
  shootId: string;
  title: string;
  creator: string;
  createdMs: number;
  expiresMs: number;
  timeZone: string;
}

/** What joining gives a device: who it writes as, and the secret that proves it. */
export interface Identity {
  code: string;
  archerId: string;
  token: string;
}

export type Connection = "connecting" | "online" | "offline";

export interface Status {
  connection: Connection;
  /** Writes not yet acknowledged by the relay (at most one per archer: writes are whole states). */
  pending: number;
  lastError: { code: string; message: string } | null;
}

/** An edit of this device's is gone: `winner`, another device's newer state that does not
 * hold it, replaced `mine`. `acknowledged`: the relay had acknowledged `mine` first. */
export interface Replaced {
  mine: ArcherState;
  winner: ArcherState;
  acknowledged: boolean;
}

export interface NoticeEvent {
  kind: string;
  round: string;
  archer: string | null;
  text: string;
  /** Ends everyone in the round had completed when the relay made it; null if not sent. */
  ends: number | null;
}

export interface ShootClient {
  readonly code: string;
  /** My archer id; null for a viewer. */
  readonly me: string | null;
  /** null until the first welcome (or a cached replica). */
  shoot(): ShootInfo | null;
  /** Every archer, the replica overlaid with this device's unacknowledged writes. */
  archers(): ReadonlyMap<string, ArcherEntry>;
  /** My newest state, including unacknowledged writes. */
  myState(): ArcherState | null;
  status(): Status;
  /** Resolves once the write is in the IndexedDB outbox (it shows at once). */
  write(state: ArcherState): Promise<void>;
  on(event: "change" | "status", fn: () => void): () => void;
  on(event: "notice", fn: (n: NoticeEvent) => void): () => void;
  on(event: "replaced", fn: (r: Replaced) => void): () => void;
  close(): void;
}

export interface OpenShootOptions {
  /** The relay's origin, e.g. "https://archery.example"; defaults to the page's. */
  origin?: string;
  code: string;
  /** Write as this archer; a viewer when absent or null. */
  identity?: Identity | null;
  /** This device's id; defaults to the one remembered in IndexedDB. */
  deviceId?: string;
}
