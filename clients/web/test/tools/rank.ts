// Ranking parity with sync/leaderboard.py (tests/test_web_model_parity.py).
//   stdin: {"rounds": [/api/rounds entries], "archers": [ArcherEntry, ...]}
//   stdout: the Ranking from rankRounds, plus summaries per archer
import type { RoundInfo } from "../../src/protocol/api";
import type { ArcherEntry } from "../../src/protocol/types";
import { rankRounds } from "../../src/model/leaderboard";
import { roundsById } from "../../src/model/rounds";
import { readJson, writeJson } from "./stdio";

const input = (await readJson()) as { rounds: Record<string, unknown>[]; archers: ArcherEntry[] };
const rounds = roundsById(
  input.rounds.map(
    (r): RoundInfo => ({
      codename: String(r.codename),
      name: String(r.name),
      location: String(r.location),
      totalArrows: Number(r.total_arrows),
      endSize: Number(r.end_size),
      maxScore: Number(r.max_score),
      values: r.values as RoundInfo["values"],
      tieBreak: r.tie_break === "hits" ? "hits" : "tens",
      passes: r.passes as RoundInfo["passes"],
    }),
  ),
);
// Reverse the input: the ranking must not depend on the order archers arrive in.
writeJson(rankRounds([...input.archers].reverse(), rounds));
