/**
 * The final results of an ended shoot. When a shoot's day ends the relay closes it (no
 * joins, no sessions) but `GET /api/shoots/{code}` keeps answering for a day more, with
 * `ended: true`, the archers' states and the final leaderboard. This module turns that
 * answer into what the results screen shows; a live shoot is "no final results" (the
 * screen follows it live instead).
 */
import type { ArcherEntry, Derived, ShootInfo, ShootRead } from "../protocol/index";
import { readShoot } from "../protocol/index";

export interface FinalResults {
  shoot: ShootInfo;
  archers: ReadonlyMap<string, ArcherEntry>;
}

interface StandingJson {
  archer_id?: unknown;
  handicap?: unknown;
  predicted_score?: unknown;
  classification?: unknown;
  classification_status?: unknown;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** What only the relay computes (handicap, classification), from its final leaderboard. */
function derivedById(leaderboard: unknown): Map<string, Derived> {
  const out = new Map<string, Derived>();
  const groups = (leaderboard as { groups?: unknown } | null)?.groups;
  if (!Array.isArray(groups)) return out;
  for (const group of groups) {
    const standings = (group as { standings?: unknown } | null)?.standings;
    if (!Array.isArray(standings)) continue;
    for (const s of standings as StandingJson[]) {
      if (typeof s.archer_id !== "string") continue;
      const status = s.classification_status;
      out.set(s.archer_id, {
        handicap: numberOrNull(s.handicap),
        predicted: numberOrNull(s.predicted_score),
        classification: typeof s.classification === "string" ? s.classification : null,
        status: status === "achieved" || status === "on_track" ? status : null,
      });
    }
  }
  return out;
}

/** The final results in a read of an ended shoot; null for a live one. */
export function finalFromRead(read: ShootRead): FinalResults | null {
  if (!read.ended) return null;
  const derived = derivedById(read.leaderboard);
  const archers = new Map<string, ArcherEntry>();
  for (const [id, state] of Object.entries(read.archers ?? {})) {
    if (!state || typeof state.name !== "string" || typeof state.round !== "string" || !Array.isArray(state.arrows)) {
      continue; // one malformed archer must not hide the others
    }
    archers.set(id, { id, state, stamp: [0, 0, "final"], derived: derived.get(id) ?? null });
  }
  return { shoot: read.shoot, archers };
}

/**
 * The final results of the shoot with this code, or null when it is live. A refusal
 * (unknown code, results no longer kept) and no signal are null too: the screen then opens
 * the shoot, which says why it cannot be shown, or shows the board saved on this device.
 */
export async function loadFinal(code: string): Promise<FinalResults | null> {
  try {
    return finalFromRead(await readShoot(code));
  } catch {
    return null;
  }
}
