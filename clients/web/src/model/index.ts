// Scoring and ranking from the arrows, mirroring sync/leaderboard.py.
export { type Round, roundsById, toRound } from "./rounds";
export { type Summary, arrowValue, ends, scoreProblem, summarize } from "./scoring";
export { type Ranking, type RoundGroup, type Standing, compareText, rankRounds } from "./leaderboard";
