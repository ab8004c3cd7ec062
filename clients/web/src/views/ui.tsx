/** Small building blocks every screen uses, so they look and behave alike. */
import type { ComponentChildren } from "preact";
import { linkTo } from "./router";

export function Page(props: { title: string; subtitle?: string; children: ComponentChildren; home?: boolean }) {
  return (
    <main class="page">
      <header class="top">
        {props.home !== false && (
          <a class="brand" {...linkTo("/")}>
            fast-shoot
          </a>
        )}
        <h1>{props.title}</h1>
        {props.subtitle && <p class="subtitle">{props.subtitle}</p>}
      </header>
      {props.children}
    </main>
  );
}

/** A labelled control; `id` must be the control's id (the label names it, the hint describes it). */
export function Field(props: { id: string; label: string; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label class="field-label" for={props.id}>
        {props.label}
      </label>
      {props.children}
      {props.hint && (
        <span class="hint" id={`${props.id}-hint`}>
          {props.hint}
        </span>
      )}
    </div>
  );
}

export function ErrorText(props: { text: string | null }) {
  if (!props.text) return null;
  return (
    <p class="error" role="alert">
      {props.text}
    </p>
  );
}

export function SubmitButton(props: { label: string; busy?: boolean }) {
  return (
    <button type="submit" class="button primary" disabled={props.busy}>
      {props.busy ? "Please wait…" : props.label}
    </button>
  );
}

/** A full-screen sentence while something loads or when a screen cannot be shown. */
export function Message(props: { title: string; text: string | null; loading?: boolean; children?: ComponentChildren }) {
  return (
    <Page title={props.title}>
      {props.text && (
        <p class="card message" role={props.loading ? "status" : "alert"}>
          {props.text}
        </p>
      )}
      {props.children}
    </Page>
  );
}

/** A shoot that cannot be shown (unknown, ended, refused): the reason, and the way back. */
export function ShootTrouble(props: { code: string; text: string }) {
  return (
    <Message title={`Shoot ${props.code}`} text={props.text}>
      <a class="button secondary" {...linkTo("/")}>
        Back to the start
      </a>
    </Message>
  );
}
