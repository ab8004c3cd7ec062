/**
 * `/view/{code}?big`: the leaderboard for a club-house TV or a projector. Nobody touches
 * it: large type, every round side by side (a round with more archers than fit pages
 * through them), a banner when a round's lead changes, and it keeps itself live: the
 * session reconnects on its own after a relay restart, and a screen that could not load
 * the shoot at all tries again. When the shoot's day ends it shows the final results.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { ShootClient } from "../protocol/index";
import type { BoardView, Rounds } from "./data";
import { buildBoard, useRounds } from "./data";
import { useShoot } from "./hooks";
import { ResultsScreen } from "./results";
import { refusedShoot } from "./status";

/** How long a lead-change banner stays up. */
const BANNER_MS = 15_000;
/** How long each page of a long round stays up. */
const PAGE_MS = 8_000;
/** A screen that could not open the shoot tries again after this long. */
const RETRY_MS = 10_000;
/** Height of one row in CSS pixels at 1080p (see .big-row in app.css). */
const ROW_PX = 64;

interface Banner {
  text: string;
  at: number;
}

/** Who leads each round (a unique first place with arrows shot), by round code. */
export function leaders(board: BoardView): Map<string, { id: string; name: string; roundName: string }> {
  const out = new Map<string, { id: string; name: string; roundName: string }>();
  for (const g of board.groups) {
    const [first, second] = g.rows;
    if (!first || first.arrowsShot === 0) continue;
    if (second && second.position === first.position) continue; // level: nobody leads alone
    out.set(g.round, { id: first.archerId, name: first.name, roundName: g.roundName });
  }
  return out;
}

function useTicker(ms: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(id);
  }, [ms]);
  return tick;
}

function useViewportRows(): number {
  const [rows, setRows] = useState(() => Math.max(3, Math.floor((window.innerHeight - 300) / ROW_PX)));
  useEffect(() => {
    const update = () => setRows(Math.max(3, Math.floor((window.innerHeight - 300) / ROW_PX)));
    window.addEventListener("resize", update);
    return () => window.removeEventListener("resize", update);
  }, []);
  return rows;
}

function BigBoard(props: { client: ShootClient; rounds: Rounds; code: string }) {
  const { client, rounds, code } = props;
  const board = buildBoard(client.archers(), rounds, null);
  const perPage = useViewportRows();
  const tick = useTicker(PAGE_MS);
  const [banner, setBanner] = useState<Banner | null>(null);
  const seen = useRef<Map<string, { id: string; name: string; roundName: string }> | null>(null);

  const now = leaders(board);
  useEffect(() => {
    // The last archer who led each round alone: a tie in between is not a new lead.
    const before = seen.current;
    seen.current = new Map([...(before ?? []), ...now]);
    if (!before) return; // the first board: nothing changed yet
    for (const [round, lead] of now) {
      const old = before.get(round);
      if (old && old.id !== lead.id) {
        setBanner({ text: `${lead.name} takes the lead in the ${lead.roundName}!`, at: Date.now() });
      }
    }
  });
  useEffect(() => {
    if (!banner) return;
    const id = setTimeout(() => setBanner(null), BANNER_MS);
    return () => clearTimeout(id);
  }, [banner]);

  const info = client.shoot();
  const status = client.status().connection;
  return (
    <main class="big" data-testid="big-screen">
      <header class="big-head">
        <h1>{info ? info.title || `${info.creator}'s shoot` : `Shoot ${code}`}</h1>
        <p class="big-join">
          Join with code <strong>{code}</strong>
        </p>
        <p class={`big-status ${status}`} role="status" data-testid="connection" data-state={status}>
          {status === "online" ? "● Live" : "Reconnecting…"}
        </p>
      </header>
      {banner && (
        <p class="big-banner" role="alert" data-testid="lead-banner">
          {banner.text}
        </p>
      )}
      {board.groups.length === 0 && <p class="big-empty">Waiting for archers to join…</p>}
      <div class="big-rounds">
        {board.groups.map((g) => {
          const pages = Math.max(1, Math.ceil(g.rows.length / perPage));
          const page = tick % pages;
          const rows = g.rows.slice(page * perPage, (page + 1) * perPage);
          return (
            <section class="big-round" key={g.round} aria-label={g.roundName} data-round={g.round}>
              <h2>
                {g.roundName}
                {pages > 1 && (
                  <span class="big-page">
                    {" "}
                    {page + 1}/{pages}
                  </span>
                )}
              </h2>
              <ol class="big-rows">
                {rows.map((r) => (
                  <li class="big-row" key={r.archerId} data-testid="big-row" data-archer={r.archerId}>
                    <span class="pos">{r.position}</span>
                    <span class="name" data-testid="name">
                      {r.name}
                    </span>
                    <span class="arrows">
                      {r.arrowsShot}/{r.totalArrows}
                    </span>
                    <span class="score" data-testid="total">
                      {r.total}
                    </span>
                  </li>
                ))}
              </ol>
            </section>
          );
        })}
      </div>
    </main>
  );
}

export function BigScreen(props: { code: string }) {
  const { code } = props;
  const shoot = useShoot(code, null);
  const rounds = useRounds();
  const client = shoot.client;
  const lastError = client?.status().lastError ?? null;
  // Refused before it was shown, or the day ended while on screen: the final results.
  const refused = client ? (refusedShoot(client) ?? (lastError?.code === "expired" ? lastError : null)) : null;
  const failed = shoot.problem !== null || (rounds === null && client !== null && client.status().connection === "offline");

  // Nobody is there to press reload: a screen that could not start tries again by itself.
  useEffect(() => {
    if (!failed) return;
    const id = setTimeout(() => location.reload(), RETRY_MS);
    return () => clearTimeout(id);
  }, [failed]);

  if (refused?.code === "expired") return <ResultsScreen code={code} />;
  if (!client || !rounds) {
    return (
      <main class="big">
        <p class="big-empty" role="status">
          {failed ? "Cannot reach the relay; trying again…" : "Loading…"}
        </p>
      </main>
    );
  }
  return <BigBoard client={client} rounds={rounds} code={code} />;
}
