/** One archer's scorecard: every end, every arrow, end and running totals, tie-break counts. */
import { useLayoutEffect, useRef } from "preact/hooks";
import type { ArcherEntry } from "../protocol/index";
import type { Rounds } from "./data";
import { arrowScore, roundOf, summaryOf } from "./data";
import { labelOf, AGE_GROUPS, BOWSTYLES, GENDERS } from "./profile";
import { arrowClass, arrowLabel } from "./scorer";

export function Scorecard(props: { entry: ArcherEntry; rounds: Rounds; mine: boolean; onClose: () => void }) {
  const { state } = props.entry;
  const round = roundOf(state.round, props.rounds);
  const summary = summaryOf(state, props.rounds);
  const close = useRef<HTMLButtonElement>(null);
  // A layout effect: Escape works from the moment the card is on screen.
  useLayoutEffect(() => {
    close.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && props.onClose();
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, []);
  const endSize = round?.endSize ?? 6;
  const ends: Array<typeof state.arrows> = [];
  for (let i = 0; i < state.arrows.length; i += endSize) ends.push(state.arrows.slice(i, i + endSize));
  let running = 0;
  const p = state.profile;
  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && props.onClose()} role="dialog" aria-modal="true" aria-label={`Scorecard of ${state.name}`} data-testid="scorecard">
      <div class="sheet">
        <header class="sheet-head">
          <div>
            <h2>
              {state.name}
              {props.mine && <span class="you"> (you)</span>}
            </h2>
            <p class="subtitle">
              {round?.name ?? state.round} · {labelOf(BOWSTYLES, p.bowstyle)} · {labelOf(AGE_GROUPS, p.age_group)} ·{" "}
              {labelOf(GENDERS, p.gender)}
              {state.finished && " · finished"}
            </p>
          </div>
          <button type="button" class="button secondary" ref={close} onClick={props.onClose}>
            Close
          </button>
        </header>
        {ends.length === 0 ? (
          <p>No arrows scored yet.</p>
        ) : (
          <table class="card-table">
            <thead>
              <tr>
                <th scope="col">End</th>
                <th scope="col">Arrows</th>
                <th scope="col">Score</th>
                <th scope="col">Total</th>
              </tr>
            </thead>
            <tbody>
              {ends.map((arrows, index) => {
                const total = arrows.reduce((sum: number, a) => sum + arrowScore(a), 0);
                running += total;
                return (
                  <tr key={index} data-testid="scorecard-end">
                    <th scope="row">{index + 1}</th>
                    <td class="arrows">
                      {arrows.map((a, i) => (
                        <span key={i} class={arrowClass(a)}>
                          {arrowLabel(a)}
                        </span>
                      ))}
                    </td>
                    <td>{total}</td>
                    <td>{running}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {summary && (
          <dl class="stats wide">
            <div>
              <dt>Total</dt>
              <dd data-testid="scorecard-total">{summary.total}</dd>
            </div>
            <div>
              <dt>Hits</dt>
              <dd>{summary.hits}</dd>
            </div>
            <div>
              <dt>Golds</dt>
              <dd>{summary.golds}</dd>
            </div>
            <div>
              <dt>Xs</dt>
              <dd>{summary.xs}</dd>
            </div>
          </dl>
        )}
      </div>
    </div>
  );
}
