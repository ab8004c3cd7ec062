/**
 * What the screens derive from the replica: the round catalogue (kept on the device so
 * scoring works after an offline reload; the service worker never caches the API), score
 * summaries and the ranked board. The rules live in `src/model/` (the same as
 * `sync/leaderboard.py`, checked by tests on shared fixtures); this module only loads the
 * catalogue and shapes the results for display.
 */
import { useEffect, useState } from "preact/hooks";
import type { Round, Standing, Summary } from "../model/index";
import { rankRounds, roundsById, summarize } from "../model/index";
import type { ArcherEntry, ArcherState, RoundInfo } from "../protocol/index";
import { fetchRounds } from "../protocol/index";

export { arrowValue as arrowScore } from "../model/index";
export type { Round, Standing, Summary };

export type Rounds = ReadonlyMap<string, Round>;

const ROUNDS_KEY = "fast-shoot:rounds";

/** The catalogue from the relay, or the copy kept from the last time there was signal. */
export async function loadRoundList(): Promise<RoundInfo[]> {
  try {
    const list = await fetchRounds();
    try {
      localStorage.setItem(ROUNDS_KEY, JSON.stringify(list));
    } catch {
      // Storage full or disabled: the app still works while online.
    }
    return list;
  } catch (error) {
    const kept = JSON.parse(localStorage.getItem(ROUNDS_KEY) ?? "null") as RoundInfo[] | null;
    // A copy from an older build may lack what this one needs; then only signal helps.
    if (kept && kept.length > 0 && Array.isArray(kept[0]?.passes)) return kept;
    throw error;
  }
}

let shared: Promise<Rounds> | null = null;

/** The round catalogue by code name; null until loaded. Loaded once per page. */
export function useRounds(): Rounds | null {
  const [rounds, setRounds] = useState<Rounds | null>(null);
  useEffect(() => {
    let live = true;
    if (!shared) {
      shared = loadRoundList().then((list) => roundsById(list));
      shared.catch(() => {
        shared = null; // try again on the next screen
      });
    }
    shared.then((map) => live && setRounds(map)).catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);
  return rounds;
}

export interface RoundSummary {
  codename: string;
  name: string;
  location: string;
  /** Lower-case words to search in. */
  search: string;
}

export function toRoundSummaries(list: RoundInfo[]): RoundSummary[] {
  return list.map((r) => ({
    codename: r.codename,
    name: r.name,
    location: r.location,
    search: `${r.name} ${r.codename.replace(/_/g, " ")} ${r.location}`.toLowerCase(),
  }));
}

export function roundLabel(r: { name: string; location: string }): string {
  return r.location ? `${r.name} (${r.location})` : r.name;
}

export function roundOf(code: string, rounds: Rounds): Round | null {
  return rounds.get(code) ?? null;
}

export function summaryOf(state: ArcherState, rounds: Rounds): Summary | null {
  const round = rounds.get(state.round);
  return round ? summarize(state, round) : null;
}

export interface BoardRow extends Standing {
  mine: boolean;
}

export interface BoardView {
  groups: { round: string; roundName: string; rows: BoardRow[] }[];
  /** Everyone, by handicap (lower first); those without one last. */
  overall: BoardRow[];
}

export function buildBoard(archers: ReadonlyMap<string, ArcherEntry>, rounds: Rounds, me: string | null): BoardView {
  const ranking = rankRounds(archers, rounds);
  const mark = (s: Standing): BoardRow => ({ ...s, mine: s.archerId === me });
  return {
    groups: ranking.groups.map((g) => ({ round: g.round, roundName: g.roundName, rows: g.standings.map(mark) })),
    overall: ranking.overall.map(mark),
  };
}
