/**
 * What the screens derive from the replica: the round catalogue (kept on the device so
 * scoring works after an offline reload; the service worker never caches the API), score
 * summaries and the ranked board. The rules themselves live in `src/model/` (the same as
 * `sync/leaderboard.py`); this module only shapes their results for display.
 */
import { useEffect, useState } from "preact/hooks";
import type { ArcherEntry, ArcherState, Arrow, Derived, RoundInfo } from "../protocol/index";
import { fetchRounds } from "../protocol/index";

export type Rounds = ReadonlyMap<string, RoundInfo>;

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
    const kept = localStorage.getItem(ROUNDS_KEY);
    if (kept) return JSON.parse(kept) as RoundInfo[];
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
      shared = loadRoundList().then((list) => new Map(list.map((r) => [r.codename, r])));
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

export function roundOf(code: string, rounds: Rounds): RoundInfo | null {
  return rounds.get(code) ?? null;
}

export function arrowScore(arrow: Arrow): number {
  return arrow === "X" ? 10 : arrow === "M" ? 0 : arrow;
}

/** The values the archer may score at arrow `position` (0-based), best first. */
export function valuesAt(round: RoundInfo, position: number): Arrow[] {
  void position;
  return round.values;
}

export interface Summary {
  total: number;
  hits: number;
  golds: number;
  xs: number;
  arrowsShot: number;
  endsCompleted: number;
  endTotals: number[];
}

export function summaryOf(state: ArcherState, rounds: Rounds): Summary | null {
  const round = rounds.get(state.round);
  if (!round) return null;
  const gold = Math.max(...round.values.map(arrowScore));
  let total = 0;
  let hits = 0;
  let golds = 0;
  let xs = 0;
  let end = 0;
  const endTotals: number[] = [];
  state.arrows.forEach((arrow, index) => {
    const value = arrowScore(arrow);
    total += value;
    end += value;
    if (arrow !== "M") hits += 1;
    if (arrow !== "M" && value === gold) golds += 1;
    if (arrow === "X") xs += 1;
    if ((index + 1) % round.endSize === 0) {
      endTotals.push(end);
      end = 0;
    }
  });
  return {
    total,
    hits,
    golds,
    xs,
    arrowsShot: state.arrows.length,
    endsCompleted: Math.floor(state.arrows.length / round.endSize),
    endTotals,
  };
}

export interface BoardRow {
  id: string;
  name: string;
  mine: boolean;
  round: string;
  roundName: string;
  position: number;
  /** Points behind the archer listed above; null for the first. */
  behind: number | null;
  total: number;
  arrowsShot: number;
  totalArrows: number;
  finished: boolean;
  derived: Derived | null;
  overallPosition: number | null;
}

export interface BoardGroup {
  round: string;
  roundName: string;
  rows: BoardRow[];
}

export interface BoardView {
  groups: BoardGroup[];
  /** Everyone, by handicap (lower first); those without one last. */
  overall: BoardRow[];
}

export function buildBoard(archers: ReadonlyMap<string, ArcherEntry>, rounds: Rounds, me: string | null): BoardView {
  const byRound = new Map<string, { entry: ArcherEntry; summary: Summary; round: RoundInfo }[]>();
  for (const entry of archers.values()) {
    if (entry.state.left) continue;
    const round = rounds.get(entry.state.round);
    const summary = summaryOf(entry.state, rounds);
    if (!round || !summary) continue;
    const list = byRound.get(round.codename) ?? [];
    list.push({ entry, summary, round });
    byRound.set(round.codename, list);
  }
  const groups: BoardGroup[] = [];
  for (const [code, list] of byRound) {
    const round = list[0]!.round;
    const tens = round.values.includes("X") || round.values.includes(10);
    const key = (x: { summary: Summary }): [number, number, number] =>
      tens ? [x.summary.total, x.summary.golds, x.summary.xs] : [x.summary.total, x.summary.hits, x.summary.golds];
    list.sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      for (let i = 0; i < 3; i++) if (ka[i] !== kb[i]) return kb[i]! - ka[i]!;
      return a.entry.state.name < b.entry.state.name ? -1 : a.entry.state.name > b.entry.state.name ? 1 : a.entry.id < b.entry.id ? -1 : 1;
    });
    const rows: BoardRow[] = [];
    list.forEach((x, i) => {
      const prev = list[i - 1];
      const same = prev !== undefined && key(prev).every((v, j) => v === key(x)[j]);
      rows.push({
        id: x.entry.id,
        name: x.entry.state.name,
        mine: x.entry.id === me,
        round: code,
        roundName: round.name,
        position: same ? rows[i - 1]!.position : i + 1,
        behind: prev ? prev.summary.total - x.summary.total : null,
        total: x.summary.total,
        arrowsShot: x.summary.arrowsShot,
        totalArrows: round.totalArrows,
        finished: x.entry.state.finished,
        derived: x.entry.derived,
        overallPosition: null,
      });
    });
    groups.push({ round: code, roundName: round.name, rows });
  }
  groups.sort((a, b) => b.rows.length - a.rows.length || (a.roundName < b.roundName ? -1 : 1));
  const everyone = groups.flatMap((g) => g.rows);
  const rated = everyone.filter((r) => r.derived?.handicap != null).sort((a, b) => a.derived!.handicap! - b.derived!.handicap!);
  rated.forEach((r, i) => {
    const prev = rated[i - 1];
    r.overallPosition = prev && prev.derived!.handicap === r.derived!.handicap ? prev.overallPosition : i + 1;
  });
  const unrated = everyone.filter((r) => r.derived?.handicap == null).sort((a, b) => (a.name < b.name ? -1 : 1));
  return { groups, overall: [...rated, ...unrated] };
}
