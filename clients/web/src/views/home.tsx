/**
 * The first screen: join a shoot by its four digits, or create one. Creating sends the
 * device's own time zone, because a shoot lasts until the end of its creator's day where
 * they are (not the relay's midnight). The created shoot's share screen follows in place.
 */
import { useState } from "preact/hooks";
import { createShoot } from "../protocol/index";
import { describe, toProblem } from "./errors";
import { recentShoots } from "./recent";
import { linkTo, navigate } from "./router";
import { ScanCode } from "./scan";
import { SharePanel } from "./share";
import { ErrorText, Field, Page, SubmitButton } from "./ui";

export function HomeScreen(props: { notice?: string }) {
  const [created, setCreated] = useState<{ code: string; title: string; joinUrl: string } | null>(null);
  if (created) return <CreatedScreen code={created.code} title={created.title} joinUrl={created.joinUrl} />;
  return (
    <Page title="fast-shoot" subtitle="Live scores for archers, even without signal" home={false}>
      {props.notice && <p class="notice">{props.notice}</p>}
      <Recent />
      <JoinByCode />
      <CreateForm onCreated={setCreated} />
    </Page>
  );
}

function Recent() {
  const recent = recentShoots();
  if (recent.length === 0) return null;
  return (
    <section class="card" aria-labelledby="recent-heading">
      <h2 id="recent-heading">Carry on</h2>
      <ul class="recent">
        {recent.map((shoot) => (
          <li key={shoot.code}>
            <a class="button secondary" {...linkTo(`/shoot/${shoot.code}`)}>
              {shoot.title} ({shoot.code})
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}

function JoinByCode() {
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const digits = code.trim();
    if (!/^\d{4}$/.test(digits)) {
      setError("A shoot code is four digits, like 4821.");
      return;
    }
    navigate(`/join/${digits}`);
  };
  return (
    <form class="card" onSubmit={onSubmit} aria-labelledby="join-heading">
      <h2 id="join-heading">Join a shoot</h2>
      <Field id="code" label="Shoot code" hint="The four digits the organiser shared.">
        <input
          id="code"
          name="code"
          inputMode="numeric"
          autoComplete="off"
          pattern="[0-9]*"
          maxLength={4}
          value={code}
          onInput={(e) => setCode(e.currentTarget.value.replace(/\D/g, ""))}
          class="code-input"
        />
      </Field>
      <ErrorText text={error} />
      <SubmitButton label="Join" />
      <ScanCode />
    </form>
  );
}

function CreateForm(props: { onCreated: (shoot: { code: string; title: string; joinUrl: string }) => void }) {
  const [creator, setCreator] = useState("");
  const [title, setTitle] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    if (!creator.trim()) {
      setError("Enter your name, so archers know whose shoot it is.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const shoot = await createShoot({
        creator: creator.trim(),
        title: title.trim() || undefined,
        // No time zone given: createShoot sends the device's own.
      });
      props.onCreated({ code: shoot.code, title: shoot.title, joinUrl: shoot.joinUrl });
    } catch (err) {
      setError(describe(toProblem(err)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={onSubmit} aria-labelledby="create-heading">
      <h2 id="create-heading">Create a shoot</h2>
      <Field id="creator" label="Your name">
        <input
          id="creator"
          name="creator"
          autoComplete="name"
          maxLength={40}
          value={creator}
          onInput={(e) => setCreator(e.currentTarget.value)}
        />
      </Field>
      <Field id="title" label="Title (optional)" hint="For example: Club night, Tuesday">
        <input
          id="title"
          name="title"
          maxLength={100}
          value={title}
          onInput={(e) => setTitle(e.currentTarget.value)}
        />
      </Field>
      <ErrorText text={error} />
      <SubmitButton label="Create shoot" busy={busy} />
    </form>
  );
}

function CreatedScreen(props: { code: string; title: string; joinUrl: string }) {
  return (
    <Page title={props.title || "Your shoot"} subtitle="Share the code or the QR code with your archers">
      <SharePanel code={props.code} title={props.title} joinUrl={props.joinUrl} />
      <div class="actions">
        <button type="button" class="button primary" onClick={() => navigate(`/join/${props.code}`)}>
          Join as an archer
        </button>
        <button type="button" class="button secondary" onClick={() => navigate(`/view/${props.code}`)}>
          Watch the leaderboard
        </button>
      </div>
    </Page>
  );
}
