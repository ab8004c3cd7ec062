/**
 * The service worker: keeps the app shell so the app opens without signal.
 *
 * - The shell page (every app route answers the same one) is network-first: a fresh page
 *   when the relay answers within a few seconds, else the cached copy. So a new build is
 *   picked up on the next load with signal, and a reload or browser restart at a field
 *   with none still opens the app.
 * - Hashed files under /static/ never change, so they are cache-first.
 * - Nothing else is touched: the JSON API, the WebSocket, health and metrics always go to
 *   the network. Scores and the replica live in IndexedDB (the protocol module), never in
 *   this cache, so a stale copy can never show an old leaderboard as current.
 *
 * The build (build.mjs) defines the hashed shell files and a version that changes with
 * them; each version gets its own cache and the old ones are deleted on activation.
 */
import { openFromNotification } from "./notification-click";
import { readPushMessage } from "./push-message";

const sw = self as unknown as ServiceWorkerGlobalScope;
const PREFIX = "fast-shoot-shell-";
const CACHE = `${PREFIX}${__BUILD_VERSION__}`;
const SHELL = "/";
/** How long a navigation waits for the relay before the cached shell is used. */
const NETWORK_TIMEOUT_MS = 4000;
/** The app's icon among the shell files, for notifications shown without a page. */
const ICON = __SHELL_ASSETS__.find((path) => /\/icon-192-[A-Z0-9]+\.png$/.test(path));
const APP_ROUTE = /^\/(?:(?:join|shoot|view|results)\/\d{4}\/?)?$/;

sw.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll([SHELL, ...__SHELL_ASSETS__]);
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin) return;
  if (request.mode === "navigate" && APP_ROUTE.test(url.pathname)) {
    event.respondWith(shellFirstFromNetwork(request));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(cacheFirst(request));
  }
  // Everything else (/api/, /ws, /health, ...) is left to the network.
});

async function shellFirstFromNetwork(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(SHELL, response.clone());
    return response;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const slow = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), NETWORK_TIMEOUT_MS);
  });
  try {
    const response = await Promise.race([network, slow]);
    if (response && response.ok) return response;
    const cached = await cache.match(SHELL);
    if (cached) return cached;
    return response ?? (await network);
  } catch (error) {
    const cached = await cache.match(SHELL);
    if (cached) return cached;
    throw error;
  } finally {
    clearTimeout(timer);
    network.catch(() => undefined); // a late failure after the cache answered is not an error
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

// A tap on a notice's system notification brings the shoot's page forward, or opens it.
sw.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openFromNotification(sw.clients, event.notification.data));
});

// A notice pushed by the relay while no page of the app is open (Web Push). Every push
// must show a notification (the subscription is `userVisibleOnly`); the tag is the one the
// page uses for the same notice, so a notice seen both ways shows once.
sw.addEventListener("push", (event) => {
  let raw: string | null = null;
  try {
    raw = event.data ? event.data.text() : null;
  } catch {
    raw = null;
  }
  const message = readPushMessage(raw);
  event.waitUntil(
    sw.registration.showNotification(message.title, {
      body: message.body,
      tag: message.tag,
      data: { url: message.url },
      icon: ICON,
    }),
  );
});
