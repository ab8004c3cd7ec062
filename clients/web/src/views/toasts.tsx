/**
 * The relay's notices on a shoot's page: a short toast for each one about this person (a
 * lead change in their round, their own digest line), a system notification too when
 * they turned those on, and the list of notices still true under the board (a lead notice
 * only while its archer still leads on this page's board; see notices.ts).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { NoticeEvent, ShootClient } from "../protocol/index";
import type { Rounds } from "./data";
import { buildBoard } from "./data";
import type { RankedRound } from "./notices";
import { RecentNotices, isForMe } from "./notices";
import type { NotifyState } from "./notify";
import { identityFor } from "../protocol/index";
import { notifyState, showSystemNotification, startPush, stopPush, turnOff, turnOn } from "./notify";

/** How long a toast stays; long enough to read a sentence at arm's length. */
const TOAST_MS = 8000;
/** How many notices the list under the board keeps. */
const LISTED = 3;

interface Toast {
  id: number;
  text: string;
}

export function NoticeCenter(props: { client: ShootClient; rounds: Rounds | null; title: string }) {
  const { client, rounds } = props;
  const recent = useRef(new RecentNotices(LISTED));
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [, setArrived] = useState(0);
  const next = useRef(0);
  const title = useRef(props.title);
  title.current = props.title;

  useEffect(() => {
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const off = client.on("notice", (notice: NoticeEvent) => {
      if (!recent.current.add(notice)) return; // the same notice again is not news
      setArrived((n) => n + 1);
      const myRound = client.myState()?.round ?? null;
      if (!isForMe(notice, client.me, myRound)) return;
      const id = (next.current += 1);
      setToasts((old) => [...old, { id, text: notice.text }]);
      const timer = setTimeout(() => {
        timers.delete(timer);
        setToasts((old) => old.filter((t) => t.id !== id));
      }, TOAST_MS);
      timers.add(timer);
      const tag = `${client.code}:${notice.kind}:${notice.round}`;
      void showSystemNotification(title.current, notice.text, tag, location.pathname);
    });
    return () => {
      off();
      for (const timer of timers) clearTimeout(timer);
    };
  }, [client]);

  const board: RankedRound[] = rounds
    ? buildBoard(client.archers(), rounds, client.me).groups.map((g) => ({
        round: g.round,
        rows: g.rows.map((r) => ({ archerId: r.archerId, position: r.position })),
      }))
    : [];
  const listed = recent.current.current(board);
  return (
    <>
      <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
        {toasts.map((t) => (
          <p class="toast" key={t.id} data-testid="toast">
            {t.text}
            <button
              type="button"
              class="toast-close"
              onClick={() => setToasts((old) => old.filter((x) => x.id !== t.id))}
            >
              <span aria-hidden="true">×</span>
              <span class="sr-only">Dismiss</span>
            </button>
          </p>
        ))}
      </div>
      {listed.length > 0 && (
        <ul class="notices" data-testid="notices">
          {listed.map((n, i) => (
            <li key={`${i}-${n.text}`}>{n.text}</li>
          ))}
        </ul>
      )}
      <NotifyToggle code={client.code} archer={client.me} />
    </>
  );
}

/**
 * "Notify me" / "Stop notifications": the only place permission is ever asked for. While
 * on, the relay is also asked to push this shoot's notices for when the app is closed; a
 * sentence says so when that cannot work here (the in-page notifications go on).
 */
export function NotifyToggle(props: { code: string; archer: string | null }) {
  const { code, archer } = props;
  const [state, setState] = useState<NotifyState>(() => notifyState());
  const [pushNote, setPushNote] = useState<string | null>(null);

  useEffect(() => {
    if (state !== "on") return;
    let live = true;
    void (async () => {
      const identity = archer ? await identityFor(code).catch(() => null) : null;
      const outcome = await startPush(code, identity);
      if (live) setPushNote(outcome.ok ? null : outcome.reason);
    })();
    return () => {
      live = false;
    };
  }, [state, code, archer]);

  if (state === "unsupported") return null;
  if (state === "blocked") {
    return (
      <p class="hint" data-testid="notify-state" data-state="blocked">
        Notifications are blocked for this site in the browser's settings.
      </p>
    );
  }
  const on = state === "on";
  return (
    <div class="notify" data-testid="notify-state" data-state={state}>
      <button
        type="button"
        class="button secondary"
        aria-pressed={on}
        onClick={async () => {
          if (on) {
            setPushNote(null);
            setState(turnOff());
            await stopPush(code, true);
          } else {
            setState(await turnOn());
          }
        }}
      >
        {on ? "Stop notifications" : "Notify me of lead changes"}
      </button>
      {on && pushNote && (
        <p class="hint" data-testid="push-note">
          {pushNote}
        </p>
      )}
    </div>
  );
}
