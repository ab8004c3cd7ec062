// What the arrows add up to (sync/models.py `summarize`): totals, hits, golds, Xs, ends.
import type { ArcherState, Arrow } from "../protocol/types";
import type { Round } from "./rounds";

export interface Summary {
  total: number;
  hits: number;
  /** Arrows in the top ring: 9s on imperial faces, 10s and Xs on metric faces. */
  golds: number;
  xs: number;
  arrowsShot: number;
  endsCompleted: number;
  /** Score of each completed end. */
  endTotals: number[];
}

/** The points an arrow scores: "X" is 10, "M" is 0. */
export function arrowValue(arrow: Arrow): number {
  return arrow === "X" ? 10 : arrow === "M" ? 0 : arrow;
}

export function summarize(state: Pick<ArcherState, "arrows">, round: Round): Summary {
  let total = 0;
  let hits = 0;
  let golds = 0;
  let xs = 0;
  let running = 0;
  const endTotals: number[] = [];
  state.arrows.forEach((arrow, index) => {
    const value = arrowValue(arrow);
    total += value;
    running += value;
    if (arrow !== "M") hits += 1;
    if (arrow !== "M" && value === round.goldAt(index)) golds += 1;
    if (arrow === "X") xs += 1;
    if ((index + 1) % round.endSize === 0) {
      endTotals.push(running);
      running = 0;
    }
  });
  return { total, hits, golds, xs, arrowsShot: state.arrows.length, endsCompleted: Math.floor(state.arrows.length / round.endSize), endTotals };
}

/** The arrows grouped by end (the last one possibly incomplete), for score sheets. */
export function ends(arrows: readonly Arrow[], round: Round): Arrow[][] {
  const out: Arrow[][] = [];
  for (let i = 0; i < arrows.length; i += round.endSize) out.push(arrows.slice(i, i + round.endSize));
  return out;
}

/** Why a state breaks the round's rules (as the relay would refuse it), or null. */
export function scoreProblem(state: Pick<ArcherState, "arrows">, round: Round): string | null {
  if (state.arrows.length > round.totalArrows) return `A ${round.name} has only ${round.totalArrows} arrows.`;
  for (let i = 0; i < state.arrows.length; i++) {
    const arrow = state.arrows[i]!;
    if (!round.valuesAt(i).includes(arrow)) return `${String(arrow)} is not a score on this target (arrow ${i + 1}).`;
  }
  return null;
}
