/**
 * The entry point: render the app, and register the service worker that keeps the app
 * shell (this page, its script and stylesheet) so a reload or a browser restart without
 * signal still opens the app. Scores themselves live in IndexedDB (the protocol module's
 * outbox and replica), not in the worker's cache.
 */
import { render } from "preact";
import { App } from "./app";

const root = document.getElementById("app");
if (root) render(<App />, root);

if ("serviceWorker" in navigator && location.protocol !== "file:") {
  // A failed registration (private mode, an old browser) only costs offline reloads.
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => undefined);
}
