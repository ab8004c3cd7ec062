// Rounds as the scoring keypad and the leaderboard need them, from `/api/rounds`
// (sync/rounds.py): the values allowed at each arrow position, the top ring's value there
// (for golds), arrows per end, the tie-break rule.
import type { RoundInfo } from "../protocol/api";
import type { Arrow } from "../protocol/types";

export interface Round extends RoundInfo {
  totalEnds: number;
  /** The values allowed for the `index`-th arrow (0-based), best first; [] past the end. */
  valuesAt(index: number): Arrow[];
  /** The top ring's value at the `index`-th arrow: 9 on imperial faces, 10 on metric. */
  goldAt(index: number): number;
}

function passAt(info: RoundInfo, index: number): RoundInfo["passes"][number] | null {
  let rest = index;
  for (const pass of info.passes) {
    if (rest < pass.arrows) return pass;
    rest -= pass.arrows;
  }
  return null;
}

export function toRound(info: RoundInfo): Round {
  return {
    ...info,
    totalEnds: Math.ceil(info.totalArrows / info.endSize),
    valuesAt: (index) => passAt(info, index)?.values ?? [],
    goldAt: (index) => passAt(info, index)?.gold ?? 0,
  };
}

/** Every round by its code name (the id on the wire). */
export function roundsById(rounds: Iterable<RoundInfo>): Map<string, Round> {
  const byId = new Map<string, Round>();
  for (const info of rounds) byId.set(info.codename, toRound(info));
  return byId;
}
