/**
 * System notifications, opted into with a button (a user gesture; never asked on load) and
 * shown through the service worker's registration, so they appear while the phone is
 * locked or the tab is in the background. The choice is remembered on the device, and
 * turning it off stops them without touching the browser's permission.
 *
 * There is no push server: notices come over the shoot's WebSocket while the page is
 * open (also in the background), and the page asks its worker to show them.
 */

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
