/**
 * Errors as sentences people read. The relay already answers every refusal with a stable
 * code and a sentence; a few codes get a sentence that says what to do next, in the words
 * of the screen the person is on. Anything else shows the relay's own sentence, and an
 * error that is not the relay's (a bug, a broken network) gets a plain fallback: never a
 * stack trace or raw JSON.
 */

export interface Problem {
  code: string;
  message: string;
}

const GENERIC = "Something went wrong. Check your connection and try again.";

/** A readable sentence for an error code; `code` is the shoot's, when known. */
export function describe(problem: Problem, shootCode?: string): string {
  const shoot = shootCode ? `shoot ${shootCode}` : "that shoot";
  switch (problem.code) {
    case "unknown_shoot":
      return `There is no ${shoot}. Check the four digits and try again.`;
    case "invalid_code":
      return "A shoot code is four digits, 1000 to 9999.";
    case "expired":
      return `${capitalise(shoot)} has ended: shoots close at the end of the day they were created.`;
    case "unauthorized":
      return "This device is no longer signed in as that archer. Join the shoot again.";
    case "throttled":
      return "Too many wrong codes from this network. Wait a minute and try again.";
    case "unknown_round":
      return "That round is not one the relay knows. Pick a round from the list.";
    case "invalid_arrow":
    case "too_many_arrows":
      return `That score is not possible on this round: ${problem.message}`;
    case "offline":
      return "You are offline or the relay cannot be reached. Try again when you have signal.";
    case "no_code_available":
      return "Every shoot code is in use right now. Try again later.";
    default:
      return problem.message || GENERIC;
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Turn anything thrown into a {code, message} pair without showing internals. */
export function toProblem(error: unknown): Problem {
  if (error && typeof error === "object") {
    const e = error as { code?: unknown; message?: unknown; name?: unknown };
    if (typeof e.code === "string" && typeof e.message === "string") {
      return { code: e.code, message: e.message };
    }
    if (e.name === "TypeError") return { code: "offline", message: GENERIC };
  }
  return { code: "internal", message: GENERIC };
}
