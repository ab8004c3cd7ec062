/**
 * The end-entry keypad. The buttons are the round's own arrow values at the next arrow's
 * position (5-zone 9/7/5/3/1/M, 10-zone X/10..1/M, Worcester 5..1/M...), large enough for
 * one thumb with a bow in the other hand. Every tap and undo writes the whole new state;
 * finish locks the score after asking, leave takes the archer off the board after asking.
 */
import { useState } from "preact/hooks";
import type { Arrow, ArcherState, ShootClient } from "../protocol/index";
import type { Rounds } from "./data";
import { arrowScore, buildBoard, roundOf, summaryOf } from "./data";
import { linkTo } from "./router";
import { stopPush } from "./notify";

type Confirming = "finish" | "leave" | null;

export function arrowLabel(arrow: Arrow): string {
  return String(arrow);
}

/** What a screen reader says for an arrow: "X" and "M" read as letters otherwise. Each
 * starts with the letter shown, so the name a voice-control user reads off the key works. */
export function spokenArrow(arrow: Arrow): string {
  if (arrow === "X") return `X, ${KEY_NOTES.X}, scores 10`;
  if (arrow === "M") return `M, ${KEY_NOTES.M}, scores 0`;
  return String(arrow);
}

/** The word under a letter key: a newcomer learns what X and M mean, and the key's visible
 * text is more than one letter, so its accessible name can be checked to contain it. */
const KEY_NOTES: Partial<Record<string, string>> = { X: "inner ten", M: "miss" };

export function arrowClass(arrow: Arrow): string {
  return `arrow v-${String(arrow).toLowerCase()}`;
}

export function Scorer(props: { client: ShootClient; rounds: Rounds | null }) {
  const { client, rounds } = props;
  const [confirming, setConfirming] = useState<Confirming>(null);
  const state = client.myState();
  if (!state || !rounds) {
    return (
      <section class="card scorer" aria-label="Scoring">
        <p role="status">Loading your score sheet…</p>
      </section>
    );
  }
  const round = roundOf(state.round, rounds);
  const summary = summaryOf(state, rounds);
  if (!round || !summary) {
    return (
      <section class="card scorer" aria-label="Scoring">
        <p class="error" role="alert">
          This device does not know the round “{state.round}”. Reload the page when you have signal.
        </p>
      </section>
    );
  }

  // Each tap starts from the client's newest state, not the one this render showed: two
  // taps faster than a re-render must both count.
  const update = (change: (now: ArcherState) => ArcherState | null) => {
    const now = client.myState();
    const next = now ? change(now) : null;
    // Resolves once the write is in the outbox; the screen already shows it.
    if (next) client.write(next).catch(() => undefined);
  };
  const addArrow = (value: Arrow) =>
    update((now) =>
      now.finished || now.left || !round.valuesAt(now.arrows.length).includes(value)
        ? null
        : { ...now, arrows: [...now.arrows, value] },
    );
  const shot = state.arrows.length;
  const place = myPlace(client, rounds);
  const complete = shot >= round.totalArrows;
  const endStart = complete ? Math.max(0, shot - round.endSize) : shot - (shot % round.endSize);
  const currentEnd = state.arrows.slice(endStart);
  const endTotal = currentEnd.reduce((sum: number, a) => sum + arrowScore(a), 0);
  // After the shoot's day the relay takes no more writes; say so instead of queueing them.
  const ended = client.status().lastError?.code === "expired";
  const locked = state.finished || state.left || ended;
  const values = complete || locked ? [] : round.valuesAt(shot);

  if (state.left) {
    return (
      <section class="card scorer" aria-label="Scoring">
        <p data-testid="left-note">You have left this shoot; you are no longer on the leaderboard.</p>
        <button type="button" class="button secondary" onClick={() => update((now) => ({ ...now, left: false }))}>
          Rejoin with my score
        </button>
      </section>
    );
  }

  return (
    <section class="card scorer" aria-label="Scoring">
      <div class="score-head">
        <div>
          <p class="label">{round.name}</p>
          <p class="total">
            <span data-testid="my-total">{summary.total}</span>
            <span class="of"> / {round.maxScore}</span>
          </p>
          {place && (
            <p class="place" data-testid="my-place">
              {place}
            </p>
          )}
        </div>
        <dl class="stats">
          <div>
            <dt>Ends</dt>
            <dd data-testid="my-ends">
              {summary.endsCompleted}/{round.totalEnds}
            </dd>
          </div>
          <div>
            <dt>Arrows</dt>
            <dd data-testid="my-arrows">
              {shot}/{round.totalArrows}
            </dd>
          </div>
        </dl>
      </div>

      <div class="end" role="group" aria-label="This end">
        <span class="label">{complete ? "Last end" : `End ${Math.floor(shot / round.endSize) + 1}`}</span>
        <ol class="end-arrows" data-testid="current-end">
          {Array.from({ length: round.endSize }, (_, i) => {
            const arrow = currentEnd[i];
            return arrow === undefined ? (
              <li class="arrow empty" key={i} aria-label="not shot yet" />
            ) : (
              <li class={arrowClass(arrow)} key={i} aria-label={spokenArrow(arrow)}>
                {arrowLabel(arrow)}
              </li>
            );
          })}
        </ol>
        <span class="end-total" data-testid="end-total">
          {endTotal}
        </span>
      </div>

      {state.finished ? (
        <p class="locked" data-testid="locked">
          Score locked at {summary.total}. Well shot!
        </p>
      ) : ended ? (
        <p class="locked" data-testid="ended">
          This shoot has ended; your score stands at {summary.total}.
        </p>
      ) : null}
      {(state.finished || ended) && (
        <p>
          <a class="button secondary" {...linkTo(`/results/${client.code}`)}>
            See the results
          </a>
        </p>
      )}
      {state.finished || ended ? null : (
        <>
          <div class="keypad" role="group" aria-label="Score the next arrow">
            {values.map((value) => (
              <button
                type="button"
                key={String(value)}
                class={`key ${arrowClass(value)}`}
                data-value={String(value)}
                aria-label={`Score ${spokenArrow(value)}`}
                onClick={() => addArrow(value)}
              >
                {arrowLabel(value)}
                {KEY_NOTES[String(value)] && " "}
                {KEY_NOTES[String(value)] && <small class="key-note">{KEY_NOTES[String(value)]}</small>}
              </button>
            ))}
          </div>
          {complete && <p class="hint">All arrows are scored. Finish to lock your score.</p>}
          <div class="actions">
            <button
              type="button"
              class="button secondary"
              disabled={shot === 0}
              onClick={() =>
                update((now) => (now.finished || now.arrows.length === 0 ? null : { ...now, arrows: now.arrows.slice(0, -1) }))
              }
            >
              Undo
            </button>
            <button type="button" class="button primary" onClick={() => setConfirming("finish")}>
              Finish
            </button>
            <button type="button" class="button quiet" onClick={() => setConfirming("leave")}>
              Leave
            </button>
          </div>
        </>
      )}

      {confirming === "finish" && (
        <Confirm
          text={
            complete
              ? `Lock your score at ${summary.total}? You cannot change it afterwards.`
              : `Lock your score at ${summary.total} with ${round.totalArrows - shot} arrows not shot? You cannot change it afterwards.`
          }
          yes="Yes, finish"
          onYes={() => {
            setConfirming(null);
            update((now) => ({ ...now, finished: true }));
          }}
          onNo={() => setConfirming(null)}
        />
      )}
      {confirming === "leave" && (
        <Confirm
          text="Leave this shoot? You will be taken off the leaderboard."
          yes="Yes, leave"
          onYes={() => {
            setConfirming(null);
            update((now) => ({ ...now, left: true }));
            void stopPush(client.code, false); // no more pushes about a shoot left behind
          }}
          onNo={() => setConfirming(null)}
        />
      )}
    </section>
  );
}

/** "2nd of 5" (and how far behind the archer above), from the same ranking as the board. */
function myPlace(client: ShootClient, rounds: Rounds): string | null {
  const me = client.me;
  if (!me) return null;
  for (const group of buildBoard(client.archers(), rounds, me).groups) {
    const row = group.rows.find((r) => r.mine);
    if (!row) continue;
    const behind = row.behind ? `, ${row.behind} behind` : "";
    return `${ordinal(row.position)} of ${group.rows.length}${behind}`;
  }
  return null;
}

export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}

function Confirm(props: { text: string; yes: string; onYes: () => void; onNo: () => void }) {
  return (
    <div class="confirm" role="alertdialog" aria-label="Please confirm">
      <p>{props.text}</p>
      <div class="actions">
        <button type="button" class="button primary" onClick={props.onYes}>
          {props.yes}
        </button>
        <button type="button" class="button secondary" onClick={props.onNo}>
          Cancel
        </button>
      </div>
    </div>
  );
}
