/**
 * The live leaderboard, grouped by round: position (shared when archers are level on
 * every tie-break), name, "(you)", total, arrows shot, points behind the archer above and
 * the classification pace. Scores on different rounds cannot be compared, so a shoot with
 * several rounds also gets a ranking across rounds by handicap. Tap a line for the
 * archer's scorecard. Names are text nodes (Preact escapes them), never markup.
 */
import { useState } from "preact/hooks";
import type { ShootClient } from "../protocol/index";
import type { BoardRow, Rounds } from "./data";
import { buildBoard } from "./data";
import { Scorecard } from "./scorecard";

/** archeryutils' name for a score below every classification of the round. */
const UNCLASSIFIED = "UC";

export function classificationText(row: BoardRow): string | null {
  if (!row.classification || !row.status) return null;
  // "Achieved UC" and "On track for UC" read as if "UC" were a class to aim for.
  if (row.classification === UNCLASSIFIED) {
    return row.status === "achieved" ? "Unclassified" : "Not on track for a classification yet";
  }
  return row.status === "achieved" ? `Achieved ${row.classification}` : `On track for ${row.classification}`;
}

export function Board(props: { client: ShootClient; rounds: Rounds | null }) {
  const { client, rounds } = props;
  const [open, setOpen] = useState<string | null>(null);
  if (!rounds) {
    return (
      <section class="card board" aria-label="Leaderboard">
        <h2>Leaderboard</h2>
        <p role="status">Loading the rounds…</p>
      </section>
    );
  }
  const board = buildBoard(client.archers(), rounds, client.me);
  const selected = open ? client.archers().get(open) : undefined;
  return (
    <section class="card board" aria-label="Leaderboard" data-testid="board">
      <h2>Leaderboard</h2>
      {/* The rows' accessible name is what they show (WCAG 2.5.3); this says what a tap does. */}
      <p class="sr-only" id="open-scorecard-hint">
        Opens the archer's scorecard.
      </p>
      {board.groups.length === 0 && <p>No archers yet. Share the code to get them in.</p>}
      {board.groups.map((group) => (
        <div class="round-group" key={group.round} data-round={group.round}>
          <h3>
            {group.roundName} <span class="count">({group.rows.length})</span>
          </h3>
          <ol class="rows">
            {group.rows.map((row) => (
              <li key={row.archerId}>
                <button
                  type="button"
                  class={`row${row.mine ? " mine" : ""}`}
                  data-testid="board-row"
                  data-archer={row.archerId}
                  onClick={() => setOpen(row.archerId)}
                  aria-describedby="open-scorecard-hint"
                >
                  <span class="pos" data-testid="position">
                    {row.position}
                  </span>
                  <span class="who">
                    <span class="name" data-testid="name">
                      {row.name}
                    </span>
                    {row.mine && <span class="you"> (you)</span>}
                    {row.finished && (
                      <span class="done" title="Finished">
                        {" "}
                        ✓
                      </span>
                    )}
                    <span class="meta">
                      {row.arrowsShot}/{row.totalArrows} arrows
                      {row.behind !== null && <span data-testid="behind"> · {row.behind} behind</span>}
                    </span>
                    {classificationText(row) && (
                      <span class={`class ${row.status ?? ""}`} data-testid="classification">
                        {classificationText(row)}
                      </span>
                    )}
                  </span>
                  <span class="score" data-testid="total">
                    {row.total}
                  </span>
                </button>
              </li>
            ))}
          </ol>
        </div>
      ))}
      {board.groups.length > 1 && (
        <div class="overall" data-testid="overall">
          <h3>Across rounds, by handicap</h3>
          <p class="hint">A lower handicap is the better performance, whatever the round.</p>
          <ol class="rows">
            {board.overall.map((row) => (
              <li key={row.archerId} class={`overall-row${row.mine ? " mine" : ""}`} data-testid="overall-row" data-archer={row.archerId}>
                <span class="pos">{row.overallPosition ?? "–"}</span>
                <span class="who">
                  <span class="name">{row.name}</span>
                  {row.mine && <span class="you"> (you)</span>}
                  <span class="meta">{row.roundName}</span>
                </span>
                <span class="score">{row.handicap !== null ? `HC ${Math.round(row.handicap)}` : "–"}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
      {selected && (
        <Scorecard entry={selected} rounds={rounds} mine={selected.id === client.me} onClose={() => setOpen(null)} />
      )}
    </section>
  );
}
