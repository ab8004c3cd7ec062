// The visible-loser rule of a client session: no edit of this device's is dropped silently.
// A port of sync/carried_edits.py, rule for rule; it is its own module so that
// clientSession.ts keeps the same shape as sync/client_session.py.
//
// ClientSession reports an edit of this device's that another device's newer state replaced
// without including it (a `replaced` action). Three ways lead there: the relay answers
// `superseded` and the pending write is dropped; a new local write replaces a pending one
// that a newer state had already beaten; an acknowledged write is later replaced by another
// device's state that does not contain it. "Contains" is judged by content (`includes`): the
// same round with this device's arrows as the first ones, so another device's undo of this
// device's arrow is reported too.
//
// CarriedEdits is the memory this needs across answers and connections: per archer, this
// device's last edit while it is still carried by what the relay holds, and the newest write
// already reported acknowledged. It decides and keeps; the session acts (it owns the outbox
// and the clock a rewrite needs).
import { type Action, includes } from "./clientActions";
import { compareStamps } from "./clock";
import type { WireRegister } from "./messages";
import { compareRegisters, sameRegister, sameState } from "./outboxState";
import type { Stamp } from "./types";

/** The action reporting that another device's state replaced an edit of this device's. */
export type ReplacedAction = Extract<Action, { kind: "replaced" }>;

/** The report that `winner` replaced `lost`, unless it holds what `lost` wrote. */
export function replaced(lost: WireRegister, winner: WireRegister, acknowledged = false): ReplacedAction[] {
  if (sameRegister(lost, winner) || includes(winner, lost)) return [];
  return [{ kind: "replaced", lost, winner, acknowledged }];
}

/** Write `newest` (this device's last edit) again, stamped above every stamp seen: an older
 * edit of this device's won over it (see CarriedEdits.staleOwn). */
export class Rewrite {
  constructor(readonly newest: WireRegister) {}
}

/** Per archer, this device's last edit still carried, and the newest write reported
 * acknowledged. `deviceId`: an edit is this device's when its stamp names it. */
export class CarriedEdits {
  /** Per archer, this device's last edit while no other device's state that does not hold
   * it has replaced it (then it is reported, once). */
  private readonly carried = new Map<string, WireRegister>();
  /** Per archer, the stamp of the newest write reported `acked`: each write is reported
   * once, in stamp order, however many copies of it the relay answered. */
  private readonly acked = new Map<string, Stamp>();

  constructor(private readonly deviceId: string) {}

  /** `edit` is this device's last edit of its archer. */
  remember(edit: WireRegister): void {
    this.carried.set(edit.archer, edit);
  }

  /** The archer's last edit was reported replaced: nothing of it is carried now. */
  forget(archer: string): void {
    this.carried.delete(archer);
  }

  /** The outbox now belongs to another shoot: nothing of the old one is carried. */
  clear(): void {
    this.carried.clear();
    this.acked.clear();
  }

  /** Record that `register` is acknowledged; whether it is newer than every write of its
   * archer reported before (a resent copy's second ack is not). */
  firstAck(register: WireRegister): boolean {
    const last = this.acked.get(register.archer);
    if (last !== undefined && compareStamps(register.stamp, last) <= 0) return false;
    this.acked.set(register.archer, register.stamp);
    return true;
  }

  /** `value` is now the archer's state at the relay: whether it still holds this device's
   * last edit (acknowledged, or held by an earlier winner). If not, the edit is reported,
   * once; if `value` is an older edit of this device's that won, the last one is to be
   * written again. A pending write is answered on its own. */
  seen(value: WireRegister, pending: boolean): ReplacedAction | Rewrite | null {
    const carried = this.carried.get(value.archer);
    if (carried === undefined || pending) return null;
    if (this.mine(value)) return this.staleOwn(value, carried) ? new Rewrite(carried) : null;
    if (compareRegisters(carried, value) >= 0 || includes(value, carried)) return null;
    this.carried.delete(value.archer);
    return { kind: "replaced", lost: carried, winner: value, acknowledged: true };
  }

  mine(register: WireRegister): boolean {
    return register.stamp[2] === this.deviceId;
  }

  /** Whether `winner`, this device's, is an older edit than `newest` (its last) that won all
   * the same: stamped before a `clock_skew` correction and carried late (a forwarded write,
   * a resent copy), it beats every stamp the corrected clock issued since. */
  staleOwn(winner: WireRegister, newest: WireRegister): boolean {
    return this.mine(winner) && !sameState(winner, newest) && compareRegisters(winner, newest) > 0;
  }
}
