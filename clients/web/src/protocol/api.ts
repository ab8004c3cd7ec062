// The relay's HTTP API (README.md): create, join, read a shoot, the round catalogue.
// Every failure is an ApiError carrying the relay's stable code and its sentence, ready to
// show; a network failure is status 0, code "offline".
import type { ArcherState, Identity, ShootInfo } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface CreatedShoot extends ShootInfo {
  joinUrl: string;
  viewerUrl: string;
  qrSvgUrl: string;
  qrPngUrl: string;
}

/** A first join sends the profile; another device of the same archer sends its id and token. */
export type JoinRequest =
  | { name: string; round: string; bowstyle: string; age_group: string; gender: string }
  | { archerId: string; token: string };

/** One round of `/api/rounds`: the arrow values an archer may score, best first. */
export interface RoundInfo {
  codename: string;
  name: string;
  location: string;
  totalArrows: number;
  endSize: number;
  maxScore: number;
  /** The values allowed for the first arrow, best first (see `passes` for the rest). */
  values: (number | "X" | "M")[];
  /** How equal scores are split: "hits" then golds (imperial), or "tens" then Xs (metric). */
  tieBreak: "hits" | "tens";
  /** The round's passes in shooting order: arrows, values allowed, the top ring's value. */
  passes: { arrows: number; values: (number | "X" | "M")[]; gold: number }[];
}

export interface ShootRead {
  shoot: CreatedShoot;
  archers: Record<string, ArcherState>;
  /** The relay's own leaderboard JSON, as `sync/leaderboard.py` builds it. */
  leaderboard: unknown;
  /** The shoot has ended: these are its final results (kept for a day after the end). */
  ended: boolean;
}

interface Options {
  origin?: string;
  fetch?: typeof fetch;
}

function base(origin?: string): string {
  if (origin) return origin.replace(/\/+$/, "");
  return typeof location === "undefined" ? "" : location.origin;
}

async function call(path: string, init: RequestInit, options: Options = {}): Promise<unknown> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(base(options.origin) + path, init);
  } catch {
    throw new ApiError(0, "offline", "Cannot reach the relay. Check the connection and try again.");
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error && typeof error.code === "string" && typeof error.message === "string") {
      throw new ApiError(response.status, error.code, error.message);
    }
    throw new ApiError(response.status, "http_error", `The relay answered with status ${response.status}.`);
  }
  if (body === null) throw new ApiError(response.status, "malformed", "The relay's answer was not JSON.");
  return body;
}

function post(path: string, data: unknown, options?: Options): Promise<unknown> {
  const init = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) };
  return call(path, init, options);
}

/** Converts the relay's snake_case shoot JSON. */
export function shootFromJson(raw: Record<string, unknown>): CreatedShoot {
  return {
    code: String(raw.code),
    shootId: String(raw.shoot_id),
    title: String(raw.title ?? ""),
    creator: String(raw.creator ?? ""),
    createdMs: Number(raw.created_ms),
    expiresMs: Number(raw.expires_ms),
    timeZone: String(raw.time_zone ?? "UTC"),
    joinUrl: String(raw.join_url ?? ""),
    viewerUrl: String(raw.viewer_url ?? ""),
    qrSvgUrl: String(raw.qr_svg_url ?? ""),
    qrPngUrl: String(raw.qr_png_url ?? ""),
  };
}

/** The device's IANA time zone (the shoot expires at the end of the creator's local day). */
export function deviceTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export async function createShoot(
  request: { creator: string; title?: string; timeZone?: string },
  options?: Options,
): Promise<CreatedShoot> {
  const body = { creator: request.creator, title: request.title ?? "", time_zone: request.timeZone ?? deviceTimeZone() };
  return shootFromJson((await post("/api/shoots", body, options)) as Record<string, unknown>);
}

/** Joins `code`; the identity returned is what `openShoot` needs to write (keep it). */
export async function joinShoot(code: string, request: JoinRequest, options?: Options): Promise<Identity> {
  const body = "archerId" in request ? { archer_id: request.archerId, token: request.token } : request;
  const raw = (await post(`/api/shoots/${encodeURIComponent(code)}/join`, body, options)) as Record<string, unknown>;
  return { code, archerId: String(raw.archer_id), token: String(raw.token) };
}

export async function fetchRounds(options?: Options): Promise<RoundInfo[]> {
  const raw = (await call("/api/rounds", { method: "GET" }, options)) as Record<string, unknown>[];
  return raw.map((r) => ({
    codename: String(r.codename),
    name: String(r.name),
    location: String(r.location ?? ""),
    totalArrows: Number(r.total_arrows),
    endSize: Number(r.end_size),
    maxScore: Number(r.max_score),
    values: r.values as (number | "X" | "M")[],
    tieBreak: r.tie_break === "hits" ? "hits" : "tens",
    passes: (r.passes as { arrows: number; values: (number | "X" | "M")[]; gold: number }[]).map((p) => ({
      arrows: Number(p.arrows),
      values: p.values,
      gold: Number(p.gold),
    })),
  }));
}

export async function readShoot(code: string, options?: Options): Promise<ShootRead> {
  const raw = (await call(`/api/shoots/${encodeURIComponent(code)}`, { method: "GET" }, options)) as Record<string, unknown>;
  return {
    shoot: shootFromJson(raw.shoot as Record<string, unknown>),
    archers: raw.archers as Record<string, ArcherState>,
    leaderboard: raw.leaderboard,
    ended: raw.ended === true,
  };
}

/** The relay's VAPID public key (base64url), which browsers subscribe to push with. */
export async function fetchPushKey(options?: Options): Promise<string> {
  const raw = (await call("/api/push/key", { method: "GET" }, options)) as Record<string, unknown>;
  if (typeof raw.public_key !== "string") throw new ApiError(200, "malformed", "The relay's push key is missing.");
  return raw.public_key;
}

/** Ask the relay to push this shoot's notices to a browser's push subscription; an
 * archer's own (with the archer's token), or a viewer's (lead changes only). */
export async function subscribePush(
  code: string,
  subscription: PushSubscriptionJSON,
  identity: Identity | null,
  options?: Options,
): Promise<void> {
  const body = identity ? { subscription, archer_id: identity.archerId, token: identity.token } : { subscription };
  await post(`/api/shoots/${encodeURIComponent(code)}/push`, body, options);
}

export async function unsubscribePush(code: string, endpoint: string, options?: Options): Promise<void> {
  const init = { method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ endpoint }) };
  await call(`/api/shoots/${encodeURIComponent(code)}/push`, init, options);
}
