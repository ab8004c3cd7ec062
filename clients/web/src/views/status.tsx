/**
 * What the screen says about the connection: online, connecting, or offline with how many
 * ends wait on this phone; the relay's refusals as sentences; and, when the archer's other
 * device wrote newer, what this device's score was replaced by.
 */
import type { ArcherState, NoticeEvent, Replaced, ShootClient, ShootInfo } from "../protocol/index";
import type { Rounds } from "./data";
import { summaryOf } from "./data";
import { describe } from "./errors";

export function ShootHeader(props: { code: string; info: ShootInfo | null }) {
  const { info } = props;
  const title = info ? info.title || `${info.creator}'s shoot` : `Shoot ${props.code}`;
  return (
    <header class="top">
      <a class="brand" href="/">
        fast-shoot
      </a>
      <h1>{title}</h1>
      <p class="subtitle">
        Code <strong data-testid="shoot-code">{props.code}</strong>
        {info && <> · by {info.creator}</>}
      </p>
    </header>
  );
}

const FATAL = new Set(["unauthorized", "unknown_shoot", "expired"]);

/** The relay refused the shoot itself (gone, ended, not ours) before it was ever shown. */
export function refusedShoot(client: ShootClient): { code: string; message: string } | null {
  const error = client.status().lastError;
  return error && FATAL.has(error.code) && client.shoot() === null ? error : null;
}

/**
 * Ends this device scored that the relay has not acknowledged yet. The protocol module
 * reports pending writes, not ends (a write is the whole state), so the screen remembers
 * how many ends were complete the last time nothing was pending; kept in localStorage so
 * the count is still right after a reload without signal.
 */
export function endsWaiting(client: ShootClient, rounds: Rounds | null): number {
  const me = client.me;
  const mine = client.myState();
  if (!me || !mine || !rounds) return 0;
  const ends = summaryOf(mine, rounds)?.endsCompleted ?? 0;
  const key = `fast-shoot:sent-ends:${client.code}:${me}`;
  if (client.status().pending === 0) {
    try {
      localStorage.setItem(key, JSON.stringify({ round: mine.round, ends }));
    } catch {
      // Storage unavailable: the banner falls back to "your latest arrows".
    }
    return 0;
  }
  let sent = 0;
  try {
    const kept = JSON.parse(localStorage.getItem(key) ?? "null") as { round: string; ends: number } | null;
    if (kept && kept.round === mine.round) sent = kept.ends;
  } catch {
    sent = 0;
  }
  return Math.max(0, ends - sent);
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function StatusBar(props: { client: ShootClient; rounds: Rounds | null; code: string }) {
  const { client } = props;
  const status = client.status();
  const me = client.me;
  let waiting = "";
  const ends = endsWaiting(client, props.rounds); // also notes what is sent
  if (me && status.pending > 0) {
    waiting =
      ends > 0
        ? `${plural(ends, "end waits", "ends wait")} to be sent.`
        : "Your latest arrows wait to be sent.";
  }
  // Transient errors (the socket dropped, a timeout) are what the offline banner already
  // says; refusals and a shoot that is gone or ended are shown as they are.
  const error =
    status.lastError && (FATAL.has(status.lastError.code) || status.connection === "online") ? status.lastError : null;
  return (
    <div class="status-area">
      {status.connection === "offline" ? (
        <p class="banner offline" role="status" data-testid="connection" data-state="offline">
          <strong>Offline.</strong>{" "}
          <span data-testid="pending">
            {waiting || (me ? "Everything you scored is sent; new scores stay on this phone until you have signal." : "The leaderboard updates when you have signal again.")}
          </span>
          {waiting &&
            (ends === 1
              ? " It is safe on this phone and goes out when you have signal."
              : " They are safe on this phone and go out when you have signal.")}
        </p>
      ) : (
        <p
          class={`banner ${status.connection}`}
          role="status"
          data-testid="connection"
          data-state={status.connection}
        >
          {status.connection === "online" ? "● Live" : "Connecting…"}
          {waiting && (
            <span data-testid="pending">
              {" "}
              · {waiting}
            </span>
          )}
        </p>
      )}
      {error && (
        <p class="banner error" role="alert" data-testid="relay-error">
          {describe(error, props.code)}
        </p>
      )}
    </div>
  );
}

function scoreLine(state: ArcherState, rounds: Rounds | null): string {
  const summary = rounds ? summaryOf(state, rounds) : null;
  if (!summary) return `${plural(state.arrows.length, "arrow", "arrows")}`;
  const parts = [
    plural(summary.endsCompleted, "end", "ends"),
    plural(summary.arrowsShot, "arrow", "arrows"),
    `total ${summary.total}`,
  ];
  if (state.finished) parts.push("finished");
  if (state.left) parts.push("left the shoot");
  return parts.join(", ");
}

/** End by end, what of `mine` `winner` does not have as it was (clients/_replaced.py's words). */
export function lostEnds(mine: ArcherState, winner: ArcherState, rounds: Rounds | null): string[] {
  const size = rounds?.get(mine.round)?.endSize ?? 6;
  const ends = (arrows: ArcherState["arrows"]) => {
    const out: string[] = [];
    for (let i = 0; i < arrows.length; i += size) out.push(arrows.slice(i, i + size).join(" "));
    return out;
  };
  const theirs = winner.round === mine.round ? ends(winner.arrows) : [];
  const lines = ends(mine.arrows).flatMap((end, i) =>
    theirs[i] === end ? [] : [`Your end ${i + 1} (${end}) from this device was replaced by a newer write from another device.`],
  );
  return lines.length > 0 ? lines : ["A change from this device was replaced by a newer write from another device."];
}

export function ReplacedBanner(props: { replaced: Replaced; rounds: Rounds | null; onRestore: () => void; onClose: () => void }) {
  const { mine, winner } = props.replaced;
  return (
    <div class="banner replaced card" role="alert" data-testid="replaced">
      <p>
        <strong>Your other device saved a newer score.</strong> This device's score was replaced.
      </p>
      <ul data-testid="replaced-ends">
        {lostEnds(mine, winner, props.rounds).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      <p>
        Replaced: <span data-testid="replaced-mine">{scoreLine(mine, props.rounds)}</span>
        <br />
        Now: <span data-testid="replaced-winner">{scoreLine(winner, props.rounds)}</span>
      </p>
      <button type="button" class="button secondary" onClick={props.onRestore}>
        Restore this device's score
      </button>{" "}
      <button type="button" class="button secondary" onClick={props.onClose}>
        OK
      </button>
    </div>
  );
}

/** The relay's notices (lead changes, digests) as they arrive; sentences ready to show. */
export function Notices(props: { notices: NoticeEvent[] }) {
  if (props.notices.length === 0) return null;
  return (
    <ul class="notices" aria-live="polite" data-testid="notices">
      {props.notices.map((n, i) => (
        <li key={`${i}-${n.text}`}>{n.text}</li>
      ))}
    </ul>
  );
}
