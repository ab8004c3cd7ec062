// The options of the live client (session.ts): timings, test hooks, and where its outbox is
// kept; and the relay's URL and fatal close codes as the views word them.
import type { OpenShootOptions } from "./types";

/** Timings of the connection loop; the defaults follow docs/protocol.md. */
export interface Timings {
  pingIntervalMs: number;
  pongTimeoutMs: number;
  resendAfterMs: number;
  /** How long the socket may take to open, and then the `welcome` to come. */
  connectTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
}

export const DEFAULT_TIMINGS: Timings = {
  pingIntervalMs: 15_000,
  pongTimeoutMs: 10_000,
  resendAfterMs: 10_000,
  connectTimeoutMs: 10_000,
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
};

/** What the views show when the relay closed with a fatal code and said nothing first. */
export const FATAL_CLOSES: Record<number, { code: string; message: string }> = {
  4401: { code: "unauthorized", message: "This device's access to the shoot is no longer valid. Join the shoot again." },
  4404: { code: "unknown_shoot", message: "There is no shoot with this code." },
  4410: { code: "expired", message: "This shoot has ended." },
};

/** Extra options for tests and embedders; all optional. */
export interface SessionOptions extends OpenShootOptions {
  timings?: Partial<Timings>;
  /** The device's wall clock in ms (inject a skewed one in tests). */
  wallClock?: () => number;
  /** The WebSocket constructor (the global one by default). */
  webSocket?: typeof WebSocket;
  /** The random source of the reconnect jitter (uniform in [0, 1)). */
  random?: () => number;
  /** Whether to follow the window's `online`/`offline` events (default: when present). */
  watchNetwork?: boolean;
}

/** One outbox per shoot code, archer (or viewer) and device. */
export function outboxKey(code: string, archer: string | null, device: string): string {
  return `${code}/${archer ?? "viewer"}/${device}`;
}

/**
 * The relay's WebSocket endpoint; with the shoot's code (`/ws?code=1234`), so a relay running
 * several workers hands the connection to the one that owns the shoot (the hello still says
 * which shoot it is).
 */
export function websocketUrl(origin: string, code?: string): string {
  const base = origin.replace(/^http(s?):\/\//, "ws$1://").replace(/\/+$/, "") + "/ws";
  return code === undefined ? base : `${base}?code=${encodeURIComponent(code)}`;
}

export function pageOrigin(): string {
  if (typeof location === "undefined") throw new Error("openShoot needs an origin outside a browser page.");
  return location.origin;
}
