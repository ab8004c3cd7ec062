/**
 * The results of a shoot, per round: position, name, round, score, hits, golds (10s and Xs
 * on metric faces) and the classification achieved, optionally with each archer's
 * scorecard, under the shoot's title and its date in the creator's time zone. The same
 * component is the screen (`/results/{code}`), the printed page (the print stylesheet
 * puts each round on its own page) and the data the share image is drawn from.
 *
 * It works on any set of archers: the live replica while the shoot runs, or the final
 * board the relay keeps for a day after the shoot has ended (see `final.ts`). Names are
 * text nodes (Preact escapes them), never markup.
 */
import { useEffect, useState } from "preact/hooks";
import type { ArcherEntry, Arrow, ShootInfo } from "../protocol/index";
import type { Rounds, Standing } from "./data";
import { arrowScore, buildBoard, useRounds } from "./data";
import { describe } from "./errors";
import type { FinalResults } from "./final";
import { loadFinal } from "./final";
import { useShoot } from "./hooks";
import { linkTo } from "./router";
import { shareResultsImage } from "./share-image";
import { refusedShoot } from "./status";
import { Message } from "./ui";

export interface ResultsRow {
  position: number;
  name: string;
  roundName: string;
  total: number;
  hits: number;
  golds: number;
  xs: number;
  arrowsShot: number;
  totalArrows: number;
  classification: string | null;
  archerId: string;
  arrows: (number | string)[];
}

export interface ResultsGroup {
  round: string;
  roundName: string;
  /** Imperial faces count golds (9s); metric faces count 10s and Xs. */
  metric: boolean;
  rows: ResultsRow[];
}

export interface ResultsData {
  title: string;
  /** The shoot's day in the creator's time zone, e.g. "Friday 27 November 2026". */
  date: string;
  place: string;
  code: string;
  ended: boolean;
  groups: ResultsGroup[];
}

/** "Europe/London" → "London (Europe/London)": where the shoot's day was counted. */
export function placeOf(timeZone: string): string {
  const city = timeZone.split("/").pop()?.replace(/_/g, " ") ?? timeZone;
  return city === timeZone ? timeZone : `${city} (${timeZone})`;
}

export function shootDate(info: ShootInfo): string {
  try {
    return new Intl.DateTimeFormat("en-GB", { dateStyle: "full", timeZone: info.timeZone }).format(info.createdMs);
  } catch {
    // An unknown zone name (an old browser's tz data): the device's zone is close enough.
    return new Intl.DateTimeFormat("en-GB", { dateStyle: "full" }).format(info.createdMs);
  }
}

function achieved(s: Standing): string | null {
  return s.status === "achieved" && s.classification ? s.classification : null;
}

/** Shape the ranked board for the results table, the print view and the image. */
export function resultsData(
  info: ShootInfo,
  archers: ReadonlyMap<string, ArcherEntry>,
  rounds: Rounds,
  ended: boolean,
): ResultsData {
  const board = buildBoard(archers, rounds, null);
  return {
    title: info.title || `${info.creator}'s shoot`,
    date: shootDate(info),
    place: placeOf(info.timeZone),
    code: info.code,
    ended,
    groups: board.groups.map((g) => ({
      round: g.round,
      roundName: g.roundName,
      metric: rounds.get(g.round)?.tieBreak === "tens",
      rows: g.rows.map((s) => ({
        position: s.position,
        name: s.name,
        roundName: s.roundName,
        total: s.total,
        hits: s.hits,
        golds: s.golds,
        xs: s.xs,
        arrowsShot: s.arrowsShot,
        totalArrows: s.totalArrows,
        classification: achieved(s),
        archerId: s.archerId,
        arrows: archers.get(s.archerId)?.state.arrows ?? [],
      })),
    })),
  };
}

function ResultsTable(props: { group: ResultsGroup }) {
  const { group } = props;
  return (
    <table class="results-table" data-testid="results-table">
      <caption>{group.roundName}</caption>
      <thead>
        <tr>
          <th scope="col">Pos</th>
          <th scope="col">Name</th>
          <th scope="col">Round</th>
          <th scope="col">Score</th>
          <th scope="col">Hits</th>
          {group.metric ? (
            <>
              <th scope="col">10s</th>
              <th scope="col">Xs</th>
            </>
          ) : (
            <th scope="col">Golds</th>
          )}
          <th scope="col">Class</th>
        </tr>
      </thead>
      <tbody>
        {group.rows.map((r) => (
          <tr key={r.archerId} data-testid="results-row">
            <td>{r.position}</td>
            <th scope="row" data-testid="results-name">
              {r.name}
            </th>
            <td>{r.roundName}</td>
            <td>
              <span data-testid="results-score">{r.total}</span>
              {r.arrowsShot < r.totalArrows && (
                <span class="partial">
                  {" "}
                  ({r.arrowsShot}/{r.totalArrows})
                </span>
              )}
            </td>
            <td>{r.hits}</td>
            {group.metric ? (
              <>
                <td>{r.golds - r.xs}</td>
                <td>{r.xs}</td>
              </>
            ) : (
              <td>{r.golds}</td>
            )}
            <td>{r.classification ?? "–"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The arrows end by end, the last end too when it is not complete: an archer who finished
 * early, or a shoot still going, has arrows there that count in the total. */
function endsOf(arrows: readonly (number | string)[], perEnd: number): (number | string)[][] {
  const out: (number | string)[][] = [];
  for (let i = 0; i < arrows.length; i += perEnd) out.push(arrows.slice(i, i + perEnd));
  return out;
}

function ScorecardList(props: { group: ResultsGroup; perEnd: number }) {
  return (
    <div class="results-cards">
      <h2 class="results-cards-title">Scorecards: {props.group.roundName}</h2>
      {props.group.rows.map((r) => (
        <section class="results-card" key={r.archerId} aria-label={`Scorecard: ${r.name}`}>
          <h3>{r.name}</h3>
          <ol class="results-ends">
            {endsOf(r.arrows, props.perEnd).map((arrows, i) => (
              <li key={i}>
                <span class="arrows">{arrows.join(" ")}</span>
                <span class="end-total">{arrows.reduce((sum: number, a) => sum + arrowScore(a as Arrow), 0)}</span>
              </li>
            ))}
          </ol>
          <p class="results-card-total">Total {r.total}</p>
        </section>
      ))}
    </div>
  );
}

/** The results of every round: one section (one printed page) per round. */
export function ResultsView(props: { data: ResultsData; cards: boolean; rounds: Rounds }) {
  const { data } = props;
  return (
    <div class="results" data-testid="results">
      <header class="results-head">
        <h1>{data.title}</h1>
        <p class="subtitle">
          {data.date} · {data.place} · Shoot {data.code}
          {data.ended ? " · Final results" : " · Results so far"}
        </p>
      </header>
      {data.groups.length === 0 && <p>No archers took part.</p>}
      {data.groups.map((group) => (
        <section class="results-round" key={group.round} aria-label={`Results: ${group.roundName}`}>
          <ResultsTable group={group} />
          {props.cards && <ScorecardList group={group} perEnd={props.rounds.get(group.round)?.endSize ?? 6} />}
        </section>
      ))}
    </div>
  );
}

/** Print, share as an image, and show scorecards; hidden on paper. */
function ResultsActions(props: { data: ResultsData; cards: boolean; setCards: (v: boolean) => void }) {
  const [said, setSaid] = useState<string | null>(null);
  const share = async () => {
    setSaid(null);
    const outcome = await shareResultsImage(props.data);
    setSaid(
      outcome === "shared"
        ? null
        : outcome === "downloaded"
          ? "The results image is in your downloads."
          : "Could not make the image on this browser.",
    );
  };
  return (
    <div class="card results-actions no-print">
      <div class="actions">
        <button
          type="button"
          class="button secondary"
          aria-pressed={props.cards}
          onClick={() => props.setCards(!props.cards)}
        >
          {props.cards ? "Hide the scorecards" : "Show the scorecards"}
        </button>
        <button type="button" class="button primary" onClick={() => window.print()}>
          Print
        </button>
        <button type="button" class="button secondary" onClick={share} data-testid="share-image">
          Share as image
        </button>
      </div>
      {said && (
        <p class="hint" role="status">
          {said}
        </p>
      )}
    </div>
  );
}

/**
 * `/results/{code}`: the results of a live shoot, or the final ones of an ended shoot.
 * It asks the relay first: an ended shoot answers with its final board (`ended: true`,
 * kept a day; no live session is opened); otherwise (or without signal, when the board
 * saved on this device shows) it follows the shoot live like a viewer.
 */
export function ResultsScreen(props: { code: string }) {
  const { code } = props;
  const rounds = useRounds();
  // undefined: still asking; null: not ended (follow it live); else the final board.
  const [final, setFinal] = useState<FinalResults | null | undefined>(undefined);
  const [cards, setCards] = useState(false);
  const shoot = useShoot(code, final === null ? null : undefined);

  useEffect(() => {
    let live = true;
    loadFinal(code)
      .then((found) => live && setFinal(found))
      .catch(() => live && setFinal(null)); // offline: the saved board, if any
    return () => {
      live = false;
    };
  }, [code]);

  const back = (
    <a class="button secondary" {...linkTo("/")}>
      Back to the start
    </a>
  );
  const client = shoot.client;
  const refused = shoot.problem ?? (client ? refusedShoot(client) : null);
  if (refused) return <Message title={`Shoot ${code}`} text={describe(refused, code)} children={back} />;
  if (final && final.archers.size === 0) {
    // Ended with nobody in it: nothing to show but that it has ended.
    return <Message title={`Shoot ${code}`} text={describe({ code: "expired", message: "" }, code)} children={back} />;
  }
  let data: ResultsData | null = null;
  if (rounds && final) data = resultsData(final.shoot, final.archers, rounds, true);
  const info = client?.shoot();
  if (rounds && client && info) data = resultsData(info, client.archers(), rounds, info.expiresMs <= Date.now());
  if (!rounds || !data) return <Message title={`Shoot ${code}`} text="Loading…" loading />;
  return (
    <main class="page results-page">
      <a class="brand no-print" {...linkTo("/")}>
        fast-shoot
      </a>
      <ResultsView data={data} cards={cards} rounds={rounds} />
      <ResultsActions data={data} cards={cards} setCards={setCards} />
      {!data.ended && (
        <p class="center no-print">
          <a class="button secondary" {...linkTo(`/view/${code}`)}>
            Back to the live board
          </a>
        </p>
      )}
    </main>
  );
}
