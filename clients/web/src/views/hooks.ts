/**
 * Preact hooks over the framework-free protocol module: open a shoot for the life of a
 * screen, and re-render when its replica, status or my own state change. The client
 * object itself is the single source of truth; the hooks only count changes.
 */
import { useEffect, useState } from "preact/hooks";
import type { Identity, NoticeEvent, Replaced, ShootClient } from "../protocol/index";
import { openShoot } from "../protocol/index";
import type { Problem } from "./errors";
import { toProblem } from "./errors";

export interface OpenShoot {
  client: ShootClient | null;
  /** Set when the shoot could not be opened at all. */
  problem: Problem | null;
  /** The last time the archer's other device replaced this device's write. */
  replaced: Replaced | null;
  dismissReplaced: () => void;
  /** The relay's latest notices ("Chris leads the National"), newest first. */
  notices: NoticeEvent[];
}

/** How many notices the screen keeps. */
const NOTICES_KEPT = 3;

/** Open the shoot while the screen is shown; `identity` null opens it as a viewer. */
export function useShoot(code: string, identity: Identity | null | undefined): OpenShoot {
  const [client, setClient] = useState<ShootClient | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [replaced, setReplaced] = useState<Replaced | null>(null);
  const [notices, setNotices] = useState<NoticeEvent[]>([]);
  const [, setTick] = useState(0);

  useEffect(() => {
    if (identity === undefined) return; // still reading the device's identities
    let live = true;
    let opened: ShootClient | null = null;
    const offs: Array<() => void> = [];
    const bump = () => live && setTick((n) => n + 1);
    openShoot({ code, identity })
      .then((c) => {
        if (!live) {
          c.close();
          return;
        }
        opened = c;
        offs.push(c.on("change", bump), c.on("status", bump));
        offs.push(c.on("replaced", (r: Replaced) => live && setReplaced(r)));
        offs.push(c.on("notice", (n: NoticeEvent) => live && setNotices((old) => [n, ...old].slice(0, NOTICES_KEPT))));
        setClient(c);
      })
      .catch((error) => live && setProblem(toProblem(error)));
    return () => {
      live = false;
      for (const off of offs) off();
      opened?.close();
    };
  }, [code, identity]);

  return { client, problem, replaced, dismissReplaced: () => setReplaced(null), notices };
}
