/**
 * What a push message from the relay holds (docs/protocol.md, "Web Push"), read without
 * trusting it: the service worker shows it as a system notification, so its text is
 * bounded and the page it opens must be one of the app's own paths. A message that is
 * not what the relay sends still shows something (browsers require a notification for
 * every push), never its raw bytes.
 */

export interface PushMessage {
  title: string;
  body: string;
  /** The same tag as the page's own notification of the notice, so one replaces the other. */
  tag: string;
  /** An app path such as `/shoot/1234`, opened by a tap. */
  url: string;
}

const APP_PATH = /^\/(?:shoot|view|join|results)\/\d{4}$/;
const MAX_TITLE = 120;
const MAX_BODY = 300;
const MAX_TAG = 80;

export const FALLBACK: PushMessage = {
  title: "fast-shoot",
  body: "There is news from your shoot.",
  tag: "fast-shoot",
  url: "/",
};

function text(value: unknown, limit: number): string | null {
  if (typeof value !== "string" || value.trim() === "") return null;
  return value.length > limit ? `${value.slice(0, limit - 1)}…` : value;
}

export function readPushMessage(raw: string | null): PushMessage {
  if (raw === null || raw.length > 4096) return FALLBACK;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return FALLBACK;
  }
  if (typeof data !== "object" || data === null) return FALLBACK;
  const fields = data as Record<string, unknown>;
  const body = text(fields.body, MAX_BODY);
  if (body === null) return FALLBACK;
  const url = typeof fields.url === "string" && APP_PATH.test(fields.url) ? fields.url : "/";
  return {
    title: text(fields.title, MAX_TITLE) ?? FALLBACK.title,
    body,
    tag: text(fields.tag, MAX_TAG) ?? FALLBACK.tag,
    url,
  };
}
