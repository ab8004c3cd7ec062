/**
 * Which of the relay's notices are still worth showing, and which are about this device.
 *
 * A plain list of the last few notices kept showing "Chris has taken the lead!" after Alex
 * had overtaken him (the relay holds a lead notice back when the same archer was announced
 * less than 2 ends ago), and showed a notice twice when it arrived twice. So, as the CLI's
 * `RecentNotices` (clients/_render.py) does: one lead notice per round, shown only while
 * its archer is still the round's sole leader on the board being drawn; one digest per
 * round, a newer one replacing the older one's lines; a notice identical to one held is
 * ignored.
 */
import type { NoticeEvent } from "../protocol/index";

/** One round of the board as this page ranks it: archer ids with their positions. */
export interface RankedRound {
  round: string;
  rows: { archerId: string; position: number }[];
}

const same = (a: NoticeEvent, b: NoticeEvent) =>
  a.kind === b.kind && a.round === b.round && a.archer === b.archer && a.text === b.text && a.ends === b.ends;

export class RecentNotices {
  private arrivals = 0;
  private readonly leads = new Map<string, { arrival: number; notice: NoticeEvent }>();
  private readonly digests = new Map<string, { arrival: number; lines: NoticeEvent[] }>();

  constructor(private readonly limit: number) {}

  /** Keep `notice`; false when it repeats one already held (so it is not news). */
  add(notice: NoticeEvent): boolean {
    this.arrivals += 1;
    if (notice.kind === "lead") {
      const held = this.leads.get(notice.round);
      if (held && same(held.notice, notice)) return false;
      this.leads.set(notice.round, { arrival: this.arrivals, notice });
      return true;
    }
    const digest = this.digests.get(notice.round);
    if (!digest || digest.lines[0]?.ends !== notice.ends) {
      this.digests.set(notice.round, { arrival: this.arrivals, lines: [notice] });
      return true;
    }
    if (digest.lines.some((line) => same(line, notice))) return false;
    digest.lines.push(notice);
    return true;
  }

  /** At most `limit` notices, newest first (a digest's lines in the order they came). */
  current(board: readonly RankedRound[]): NoticeEvent[] {
    const lines: { arrival: number; index: number; notice: NoticeEvent }[] = [];
    for (const { arrival, notice } of this.leads.values()) {
      if (stillLeads(notice, board)) lines.push({ arrival, index: 0, notice });
    }
    for (const { arrival, lines: digest } of this.digests.values()) {
      digest.forEach((notice, i) => lines.push({ arrival, index: i + 1, notice }));
    }
    lines.sort((a, b) => b.arrival - a.arrival || a.index - b.index);
    return lines.slice(0, this.limit).map((line) => line.notice);
  }
}

/** Whether a lead notice's archer is still the sole leader of its round on `board`. */
export function stillLeads(notice: NoticeEvent, board: readonly RankedRound[]): boolean {
  const group = board.find((g) => g.round === notice.round);
  const leaders = group ? group.rows.filter((r) => r.position === 1) : [];
  return leaders.length === 1 && leaders[0]?.archerId === notice.archer;
}

/**
 * Whether a notice is about this page's person, so it is worth a toast and (when turned on)
 * a system notification: for an archer, a lead change in their own round and their own
 * digest line; for a viewer (`me` null), lead changes only (a digest is a line per archer,
 * which the notices list shows instead).
 */
export function isForMe(notice: NoticeEvent, me: string | null, myRound: string | null): boolean {
  if (notice.kind === "lead") return me === null || notice.round === myRound;
  return me !== null && notice.archer === me;
}
