/**
 * The final results of an ended shoot. When a shoot's day ends the relay forgets the live
 * shoot (its code may be reused the next day) but keeps its final board for a day more:
 * `GET /api/shoots/{code}` then answers `410 expired` with the board under `final`. This
 * module reads that answer; every other answer (a live shoot, an unknown code, no final
 * board kept) is "no final results".
 */
import type { ArcherEntry, ArcherState, Derived, ShootInfo } from "../protocol/index";
import { ApiError } from "../protocol/index";

export interface FinalResults {
  shoot: ShootInfo;
  archers: ReadonlyMap<string, ArcherEntry>;
}

/** Largest answer read: a full shoot's final board is far smaller. */
const MAX_BYTES = 2_000_000;

function shootInfo(raw: Record<string, unknown>): ShootInfo {
  return {
    code: String(raw.code),
    shootId: String(raw.shoot_id),
    title: String(raw.title ?? ""),
    creator: String(raw.creator ?? ""),
    createdMs: Number(raw.created_ms),
    expiresMs: Number(raw.expires_ms),
    timeZone: String(raw.time_zone ?? "UTC"),
  };
}

/** Parse the relay's `final` object; null when it is not the expected shape. */
export function parseFinal(raw: unknown): FinalResults | null {
  if (!raw || typeof raw !== "object") return null;
  const final = raw as { shoot?: unknown; archers?: unknown };
  if (!final.shoot || typeof final.shoot !== "object" || !final.archers || typeof final.archers !== "object") {
    return null;
  }
  const archers = new Map<string, ArcherEntry>();
  for (const [id, value] of Object.entries(final.archers as Record<string, unknown>)) {
    const entry = value as { state?: ArcherState; derived?: Derived | null };
    const state = entry.state;
    if (!state || typeof state.name !== "string" || typeof state.round !== "string" || !Array.isArray(state.arrows)) {
      continue; // one malformed archer must not hide the others
    }
    archers.set(id, { id, state, stamp: [0, 0, "final"], derived: entry.derived ?? null });
  }
  return { shoot: shootInfo(final.shoot as Record<string, unknown>), archers };
}

/** The final board the relay keeps for an ended shoot, or null when there is none. */
export async function loadFinal(code: string): Promise<FinalResults | null> {
  let response: Response;
  try {
    response = await fetch(`/api/shoots/${encodeURIComponent(code)}`);
  } catch {
    throw new ApiError(0, "offline", "Cannot reach the relay. Check the connection and try again.");
  }
  if (response.status !== 410) return null;
  const text = await response.text();
  if (text.length > MAX_BYTES) return null;
  try {
    return parseFinal((JSON.parse(text) as { final?: unknown }).final);
  } catch {
    return null;
  }
}
