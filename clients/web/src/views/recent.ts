/**
 * The shoots this device joined lately, so opening the app's front page again (a closed
 * tab, the home-screen icon) leads straight back to the scoring screen. Shoots end with
 * their day, so entries older than a day are dropped. The secrets stay in the protocol
 * module's IndexedDB; this list only holds codes and titles.
 */

export interface RecentShoot {
  code: string;
  title: string;
  atMs: number;
}

const KEY = "fast-shoot:recent";
const KEEP_MS = 24 * 60 * 60 * 1000;
const MAX = 5;

export function recentShoots(now = Date.now()): RecentShoot[] {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) ?? "[]") as RecentShoot[];
    return list.filter((s) => now - s.atMs < KEEP_MS);
  } catch {
    return [];
  }
}

export function rememberRecent(code: string, title: string, now = Date.now()): void {
  const others = recentShoots(now).filter((s) => s.code !== code);
  try {
    localStorage.setItem(KEY, JSON.stringify([{ code, title, atMs: now }, ...others].slice(0, MAX)));
  } catch {
    // Storage unavailable: the shoot can still be joined again by its code.
  }
}
