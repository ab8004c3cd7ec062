/**
 * What a tap on one of the app's notifications does (the service worker's
 * `notificationclick`): bring forward a window already showing the notice's shoot, or open
 * it. Kept apart from the worker so node tests can drive it with stand-in clients: a
 * browser only lets a real tap open or focus windows.
 */

export interface WindowLike {
  url: string;
  focus(): Promise<unknown>;
}

export interface ClientsLike {
  matchAll(options: { type: "window"; includeUncontrolled: boolean }): Promise<readonly WindowLike[]>;
  openWindow(url: string): Promise<unknown>;
}

/** The app path a notification's data names; `/` for anything else (never another site). */
export function notificationPath(data: unknown): string {
  const url = (data as { url?: unknown } | null)?.url;
  return typeof url === "string" && /^\/(?!\/)/.test(url) ? url : "/";
}

export async function openFromNotification(clients: ClientsLike, data: unknown): Promise<void> {
  const path = notificationPath(data);
  const windows = await clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (new URL(client.url).pathname === path) {
      await client.focus();
      return;
    }
  }
  await clients.openWindow(path);
}
