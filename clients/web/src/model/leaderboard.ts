// The leaderboard (sync/leaderboard.py, the same rules exactly; a test ranks shared
// fixtures on both sides): archers ranked within their round with archery's tie-breaks,
// points behind the archer above, and the cross-round ranking by handicap.
//
// - Imperial 5-zone and Worcester rounds rank equal scores by hits, then golds; metric
//   rounds by tens (X included), then Xs. Archers equal on every key share the position
//   (1, 2, 2, 4) and are listed by name, then id.
// - Groups: the largest first, then by round name, then code name.
// - Overall: by handicap (lower first; the relay's `derived` values), equal handicaps share
//   a position; archers without one come last, by name, with no overall position.
// - Archers who left, and states the round's rules refuse, are not ranked.
import type { ArcherEntry, Derived, Profile } from "../protocol/types";
import type { Round } from "./rounds";
import { type Summary, scoreProblem, summarize } from "./scoring";

export interface Standing extends Summary {
  archerId: string;
  name: string;
  round: string;
  roundName: string;
  profile: Profile;
  totalArrows: number;
  maxScore: number;
  finished: boolean;
  /** Position within the round; archers tied on every ranking key share it. */
  position: number;
  /** Points behind the archer listed directly above; null for the first. */
  behind: number | null;
  handicap: number | null;
  predicted: number | null;
  classification: string | null;
  status: Derived["status"];
  /** Position in the cross-round ranking by handicap; null without a handicap. */
  overallPosition: number | null;
}

export interface RoundGroup {
  round: string;
  roundName: string;
  standings: Standing[];
}

export interface Ranking {
  groups: RoundGroup[];
  overall: Standing[];
}

/** Compare by Unicode code points, as Python compares strings. */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

interface Entry {
  id: string;
  entry: ArcherEntry;
  round: Round;
  summary: Summary;
}

function rankingKey(e: Entry): [number, number, number] {
  const s = e.summary;
  return e.round.tieBreak === "hits" ? [s.total, s.hits, s.golds] : [s.total, s.golds, s.xs];
}

function sameKey(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function rankGroup(entries: Entry[]): Standing[] {
  const sorted = [...entries].sort((a, b) => {
    const ka = rankingKey(a);
    const kb = rankingKey(b);
    for (let i = 0; i < 3; i++) if (ka[i] !== kb[i]) return kb[i]! - ka[i]!;
    return compareText(a.entry.state.name, b.entry.state.name) || compareText(a.id, b.id);
  });
  const standings: Standing[] = [];
  sorted.forEach((e, index) => {
    const previous = index > 0 ? sorted[index - 1]! : null;
    const position = previous && sameKey(rankingKey(e), rankingKey(previous)) ? standings[index - 1]!.position : index + 1;
    const d = e.entry.derived;
    standings.push({
      ...e.summary,
      archerId: e.id,
      name: e.entry.state.name,
      round: e.round.codename,
      roundName: e.round.name,
      profile: e.entry.state.profile,
      totalArrows: e.round.totalArrows,
      maxScore: e.round.maxScore,
      finished: e.entry.state.finished,
      position,
      behind: previous ? previous.summary.total - e.summary.total : null,
      handicap: d?.handicap ?? null,
      predicted: d?.predicted ?? null,
      classification: d?.classification ?? null,
      status: d?.status ?? null,
      overallPosition: null,
    });
  });
  return standings;
}

function overallOrder(a: Standing, b: Standing): number {
  const ha = a.handicap === null;
  const hb = b.handicap === null;
  if (ha !== hb) return ha ? 1 : -1;
  const byHandicap = (a.handicap ?? 0) - (b.handicap ?? 0);
  if (byHandicap !== 0) return byHandicap < 0 ? -1 : 1;
  return compareText(a.name, b.name) || compareText(a.archerId, b.archerId);
}

/** Rank every archer still in the shoot; the same result whatever the input order. */
export function rankRounds(archers: Iterable<ArcherEntry> | ReadonlyMap<string, ArcherEntry>, rounds: ReadonlyMap<string, Round>): Ranking {
  const list: Iterable<ArcherEntry> = archers instanceof Map ? archers.values() : (archers as Iterable<ArcherEntry>);
  const byRound = new Map<string, Entry[]>();
  for (const entry of list) {
    if (entry.state.left) continue;
    const round = rounds.get(entry.state.round);
    if (!round || scoreProblem(entry.state, round) !== null) continue;
    const group = byRound.get(round.codename) ?? [];
    group.push({ id: entry.id, entry, round, summary: summarize(entry.state, round) });
    byRound.set(round.codename, group);
  }
  const ranked = [...byRound.values()].map(rankGroup);
  const rated = ranked.flat().filter((s) => s.handicap !== null).sort(overallOrder);
  rated.forEach((s, i) => {
    const previous = i > 0 ? rated[i - 1]! : null;
    s.overallPosition = previous && previous.handicap === s.handicap ? previous.overallPosition : i + 1;
  });
  const groups = ranked
    .sort((a, b) => b.length - a.length || compareText(a[0]!.roundName, b[0]!.roundName) || compareText(a[0]!.round, b[0]!.round))
    .map((standings) => ({ round: standings[0]!.round, roundName: standings[0]!.roundName, standings }));
  const overall = groups.flatMap((g) => g.standings).sort(overallOrder);
  return { groups, overall };
}
