/**
 * The join link as the relay gives it: on its public origin (`PUBLIC_URL`), else the
 * origin this page was opened on. A link on a loopback address (127.0.0.1, localhost)
 * cannot be opened by a phone, so the screens warn about it.
 */
import { useEffect, useState } from "preact/hooks";
import { readShoot } from "../protocol/index";

const known = new Map<string, string>();
/** One request per shoot, however many screens ask at once. */
const asking = new Map<string, Promise<string | null>>();

function ask(code: string): Promise<string | null> {
  let pending = asking.get(code);
  if (!pending) {
    pending = readShoot(code)
      .then((read) => {
        if (read.shoot.joinUrl) known.set(code, read.shoot.joinUrl);
        return read.shoot.joinUrl || null;
      })
      .catch(() => null) // offline: the page's origin is the best guess
      .finally(() => asking.delete(code));
    asking.set(code, pending);
  }
  return pending;
}

/** The shoot's join link; the page's own origin until the relay has said otherwise. */
export function useJoinUrl(code: string, given?: string): string {
  const [url, setUrl] = useState(() => given || known.get(code) || `${location.origin}/join/${code}`);
  useEffect(() => {
    if (given) {
      known.set(code, given);
      return;
    }
    if (known.has(code)) return;
    let live = true;
    void ask(code).then((found) => {
      if (found && live) setUrl(found);
    });
    return () => {
      live = false;
    };
  }, [code, given]);
  return url;
}

export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === "localhost" || host.endsWith(".localhost") || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}
