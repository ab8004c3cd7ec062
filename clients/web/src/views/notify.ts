/**
 * System notifications, opted into with a button (a user gesture; never asked on load) and
 * shown through the service worker's registration, so they appear while the phone is
 * locked or the tab is in the background. The choice is remembered on the device, and
 * turning it off stops them without touching the browser's permission.
 *
 * Two ways in: while the page is open (also in the background) notices come over the
 * shoot's WebSocket and the page asks its worker to show them; with the app closed the
 * relay sends them through the browser's push service (Web Push), and the worker's `push`
 * handler shows them. Both use the same tag, so a notice seen both ways shows once. A
 * browser without push, or whose push service fails, keeps the first way and says so.
 */
import type { Identity } from "../protocol/index";
import { ApiError, fetchPushKey, subscribePush, unsubscribePush } from "../protocol/index";

const KEY = "fast-shoot:notifications";

export type NotifyState = "unsupported" | "blocked" | "off" | "on";

export function notifyState(): NotifyState {
  if (typeof Notification === "undefined") return "unsupported";
  if (Notification.permission === "denied") return "blocked";
  let chosen = false;
  try {
    chosen = localStorage.getItem(KEY) === "on";
  } catch {
    chosen = false;
  }
  return chosen && Notification.permission === "granted" ? "on" : "off";
}

/** Ask for permission (call from a click) and remember the choice; the new state. */
export async function turnOn(): Promise<NotifyState> {
  if (typeof Notification === "undefined") return "unsupported";
  const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
  if (permission !== "granted") return permission === "denied" ? "blocked" : "off";
  try {
    localStorage.setItem(KEY, "on");
  } catch {
    return "off"; // without storage the choice cannot be kept; do not pretend it is on
  }
  return "on";
}

export function turnOff(): NotifyState {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing stored, nothing to remove
  }
  return notifyState();
}

/**
 * Show one notification. `tag` makes a repeat replace the earlier one instead of
 * stacking. Without a worker (e.g. a private window) the page's own `Notification` is
 * used; it shows while the browser runs.
 */
export async function showSystemNotification(title: string, body: string, tag: string, url: string): Promise<void> {
  if (notifyState() !== "on") return;
  const options: NotificationOptions = { body, tag, data: { url }, icon: iconUrl() };
  try {
    if ("serviceWorker" in navigator) {
      const registration = await navigator.serviceWorker.getRegistration("/");
      if (registration) {
        await registration.showNotification(title, options);
        return;
      }
    }
    new Notification(title, options);
  } catch {
    // A browser that refuses (e.g. Android without a worker): the in-page toast still shows.
  }
}

function iconUrl(): string | undefined {
  const link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  return link?.href;
}

/** What turning on push gave: nothing to say, or a sentence for the person. */
export type PushOutcome = { ok: true } | { ok: false; reason: string };

const KEEPS_OPEN = "they arrive while this page is open.";
/** How long the browser's push service may take to hand out a subscription. */
const SUBSCRIBE_TIMEOUT_MS = 20_000;

function pushSupported(): boolean {
  return (
    typeof navigator !== "undefined" &&
    "serviceWorker" in navigator &&
    typeof PushManager !== "undefined" &&
    typeof ServiceWorkerRegistration !== "undefined" &&
    "pushManager" in ServiceWorkerRegistration.prototype
  );
}

async function registration(): Promise<ServiceWorkerRegistration | null> {
  if (!("serviceWorker" in navigator)) return null;
  return (await navigator.serviceWorker.getRegistration("/")) ?? null;
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const binary = atob(b64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameKey(held: ArrayBuffer | null, key: Uint8Array): boolean {
  if (!held || held.byteLength !== key.length) return false;
  const bytes = new Uint8Array(held);
  return bytes.every((b, i) => b === key[i]);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * Have the relay push this shoot's notices to this browser while the app is closed:
 * subscribe with the relay's key (once per browser; again if the relay's key changed) and
 * hand the subscription to the relay for this shoot, as this archer (or as a viewer).
 */
export async function startPush(code: string, identity: Identity | null): Promise<PushOutcome> {
  if (!pushSupported()) {
    return { ok: false, reason: `This browser cannot show notifications while the app is closed; ${KEEPS_OPEN}` };
  }
  try {
    const worker = await registration();
    if (!worker) return { ok: false, reason: `The app's offline helper is not running yet; ${KEEPS_OPEN}` };
    const key = fromBase64Url(await fetchPushKey());
    let subscription = await worker.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription ??= await withTimeout(
      worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
      SUBSCRIBE_TIMEOUT_MS,
    );
    await subscribePush(code, subscription.toJSON(), identity);
    return { ok: true };
  } catch (error) {
    if (error instanceof ApiError) {
      return { ok: false, reason: `Notifications while the app is closed are off: ${error.message} Meanwhile ${KEEPS_OPEN}` };
    }
    return {
      ok: false,
      reason: `This browser's push service did not answer, so notifications cannot arrive while the app is closed; ${KEEPS_OPEN}`,
    };
  }
}

/**
 * Stop this shoot's pushes to this browser (leaving the shoot, turning notifications off).
 * `everywhere` also ends the browser's subscription, so no shoot pushes to it any more
 * (the relay drops the others when the push service answers that it is gone).
 */
export async function stopPush(code: string, everywhere: boolean): Promise<void> {
  try {
    if (!pushSupported()) return;
    const subscription = await (await registration())?.pushManager.getSubscription();
    if (!subscription) return;
    await unsubscribePush(code, subscription.endpoint).catch(() => undefined);
    if (everywhere) await subscription.unsubscribe();
  } catch {
    // Nothing to stop, or the relay is away: its entry ends with the shoot's day.
  }
}
