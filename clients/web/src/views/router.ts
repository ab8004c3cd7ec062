/**
 * Client-side routes. The relay answers every app path with the same shell page, so the
 * screen is chosen here from `location.pathname`, and moving between screens is a
 * `history.pushState` (no reload: the open shoot connection and its state stay).
 *
 * Paths: `/` (create or join), `/join/{code}` (the join form for that shoot),
 * `/shoot/{code}` (the archer's own screen: score and board), `/view/{code}` (a viewer).
 * `/results/{code}` (the results to print and share) and `/view/{code}?big` (the big
 * screen for a club-house TV). Unknown paths show the home screen with a sentence saying so.
 */
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { screen: "home" }
  | { screen: "join"; code: string }
  | { screen: "shoot"; code: string }
  | { screen: "view"; code: string; big: boolean }
  | { screen: "results"; code: string }
  | { screen: "unknown"; path: string };

const CODE = /^\d{4}$/;

export function parseRoute(pathname: string, search = ""): Route {
  const parts = pathname.split("/").filter((p) => p !== "");
  if (parts.length === 0) return { screen: "home" };
  const [kind, code] = parts;
  if (parts.length === 2 && code !== undefined && CODE.test(code)) {
    if (kind === "join") return { screen: "join", code };
    if (kind === "shoot") return { screen: "shoot", code };
    if (kind === "view") return { screen: "view", code, big: new URLSearchParams(search).has("big") };
    if (kind === "results") return { screen: "results", code };
  }
  return { screen: "unknown", path: pathname };
}

const listeners = new Set<() => void>();

/** Go to another screen of the app; `replace` keeps the back button from returning. */
export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.scrollTo(0, 0);
  for (const fn of listeners) fn();
}

/** The current route; re-renders on navigation and on the back/forward buttons. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname, location.search));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname, location.search));
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return route;
}

/** Props for an `<a>` that navigates inside the app without reloading the page. */
export function linkTo(path: string): { href: string; onClick: (e: MouseEvent) => void } {
  return {
    href: path,
    onClick: (e: MouseEvent) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
      e.preventDefault();
      navigate(path);
    },
  };
}
