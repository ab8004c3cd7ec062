/**
 * `/join/{code}`: the shoot's join form. The profile (name, round, bowstyle, age group,
 * gender) is remembered on the device, so the next shoot is one tap. Opening the page
 * with `#archer=…&token=…` (the "continue on another device" link) joins this device as
 * that archer instead; the secret is in the fragment, so it never reaches a server log.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { RememberedProfile } from "../protocol/index";
import { identityFor, joinShoot, readShoot, rememberedProfile, rememberIdentity, rememberProfile } from "../protocol/index";
import type { RoundSummary } from "./data";
import { loadRoundList, roundLabel, toRoundSummaries } from "./data";
import { describe, toProblem } from "./errors";
import { AGE_GROUPS, BOWSTYLES, GENDERS } from "./profile";
import { rememberRecent } from "./recent";
import { ResultsScreen } from "./results";
import { linkTo, navigate } from "./router";
import { ErrorText, Field, Message, Page, ShootTrouble, SubmitButton } from "./ui";

interface ShootHeading {
  title: string;
  creator: string;
}

/** `#archer=ID&token=SECRET`, as the "continue on another device" link carries it. */
export function deviceLink(code: string, archerId: string, token: string): string {
  const fragment = new URLSearchParams({ archer: archerId, token }).toString();
  return `${location.origin}/join/${code}#${fragment}`;
}

function handoffFromHash(): { archerId: string; token: string } | null {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const archerId = params.get("archer");
  const token = params.get("token");
  return archerId && token ? { archerId, token } : null;
}

export function JoinScreen(props: { code: string }) {
  const { code } = props;
  const [shoot, setShoot] = useState<ShootHeading | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [ended, setEnded] = useState(false);
  const [joined, setJoined] = useState(false);

  useEffect(() => {
    let live = true;
    const handoff = handoffFromHash();
    (async () => {
      try {
        if (handoff) {
          const identity = await joinShoot(code, handoff);
          await rememberIdentity(identity);
          if (live) navigate(`/shoot/${code}`, true);
          return;
        }
        const [info, existing] = await Promise.all([readShoot(code), identityFor(code)]);
        if (!live) return;
        if (info.ended) {
          // It cannot be joined any more, but its final results are kept for a day.
          setEnded(true);
          return;
        }
        setShoot({ title: info.shoot.title, creator: info.shoot.creator });
        setJoined(existing !== null);
      } catch (error) {
        if (live) setProblem(describe(toProblem(error), code));
      }
    })();
    return () => {
      live = false;
    };
  }, [code]);

  if (ended) return <ResultsScreen code={code} />;
  if (problem) {
    return <ShootTrouble code={code} text={problem} />;
  }
  if (!shoot) return <Message title={`Shoot ${code}`} text="Loading…" loading />;
  const heading = shoot.title || `${shoot.creator}'s shoot`;
  return (
    <Page title={heading} subtitle={`Shoot ${code}, created by ${shoot.creator}`}>
      {joined && (
        <div class="card">
          <p>This device has already joined this shoot.</p>
          <button
            type="button"
            class="button primary"
            onClick={() => {
              rememberRecent(code, heading);
              navigate(`/shoot/${code}`);
            }}
          >
            Continue scoring
          </button>
        </div>
      )}
      <ProfileForm code={code} heading={heading} again={joined} />
      <p class="center">
        <a class="button secondary" {...linkTo(`/view/${code}`)}>
          Only watch the leaderboard
        </a>
      </p>
    </Page>
  );
}

function ProfileForm(props: { code: string; heading: string; again: boolean }) {
  const [rounds, setRounds] = useState<RoundSummary[] | null>(null);
  const [profile, setProfile] = useState<RememberedProfile>({
    name: "",
    round: "",
    bowstyle: "recurve",
    age_group: "adult",
    gender: "open",
  });
  const [search, setSearch] = useState("");
  const [busy, setBusy] = useState(false);
  /** Set at the first edit: a remembered profile read later must not overwrite typing. */
  const touched = useRef(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    loadRoundList()
      .then((list) => live && setRounds(toRoundSummaries(list)))
      .catch((err) => live && setError(describe(toProblem(err))));
    rememberedProfile()
      .then((saved) => live && saved && !touched.current && setProfile((p) => ({ ...p, ...saved })))
      .catch(() => undefined); // nothing remembered: the defaults stand
    return () => {
      live = false;
    };
  }, []);

  const matches = useMemo(() => {
    if (!rounds) return [];
    const words = search.toLowerCase().split(/\s+/).filter(Boolean);
    const found = rounds.filter((r) => words.every((w) => r.search.includes(w)));
    // Keep the chosen round listed even when the search no longer matches it.
    const chosen = rounds.find((r) => r.codename === profile.round);
    return chosen && !found.includes(chosen) ? [chosen, ...found] : found;
  }, [rounds, search, profile.round]);

  const set = (key: keyof RememberedProfile) => (e: Event) => {
    touched.current = true;
    const value = (e.currentTarget as HTMLInputElement).value;
    setProfile((p) => ({ ...p, [key]: value }));
  };

  /** Choose the first round the search matches, as the list under it shows it first. */
  const pickFirstMatch = (list: RoundSummary[], value: string) => {
    const words = value.toLowerCase().split(/\s+/).filter(Boolean);
    const first = list.find((r) => words.every((w) => r.search.includes(w)));
    if (first && words.length) setProfile((p) => ({ ...p, round: first.codename }));
  };

  const onSearch = (value: string) => {
    touched.current = true;
    setSearch(value);
    if (rounds) pickFirstMatch(rounds, value);
  };

  // A search typed while the list was still loading (a slow signal at the field) chooses
  // its round once the list arrives, as if it had been typed afterwards.
  useEffect(() => {
    if (rounds && search) pickFirstMatch(rounds, search);
  }, [rounds]);

  const onSubmit = async (e: Event) => {
    e.preventDefault();
    const name = profile.name.trim();
    if (!name) return setError("Enter your name as it should appear on the leaderboard.");
    if (!profile.round) return setError("Pick the round you are shooting.");
    setBusy(true);
    setError(null);
    try {
      const chosen = { ...profile, name };
      await rememberProfile(chosen);
      const identity = await joinShoot(props.code, chosen);
      await rememberIdentity(identity);
      // Known now, so the front page leads back here even before the live session answers.
      rememberRecent(props.code, props.heading);
      navigate(`/shoot/${props.code}`, true);
    } catch (err) {
      setError(describe(toProblem(err), props.code));
      setBusy(false);
    }
  };

  return (
    <form class="card" onSubmit={onSubmit} aria-labelledby="profile-heading">
      <h2 id="profile-heading">{props.again ? "Join as another archer" : "Join this shoot"}</h2>
      <Field id="name" label="Your name" hint="As it should appear on the leaderboard.">
        <input id="name" name="name" autoComplete="name" maxLength={40} value={profile.name} onInput={set("name")} />
      </Field>
      <Field id="round-search" label="Find your round" hint="Type part of its name, e.g. national, york, wa 70.">
        <input
          id="round-search"
          name="round-search"
          type="search"
          autoComplete="off"
          value={search}
          onInput={(e) => onSearch(e.currentTarget.value)}
        />
      </Field>
      <Field id="round" label="Round">
        <select id="round" name="round" value={profile.round} onChange={set("round")} disabled={!rounds}>
          <option value="" disabled>
            {rounds ? (matches.length ? "Pick a round" : "No round matches") : "Loading rounds…"}
          </option>
          {matches.map((r) => (
            <option key={r.codename} value={r.codename}>
              {roundLabel(r)}
            </option>
          ))}
        </select>
      </Field>
      <div class="row">
        <Field id="bowstyle" label="Bowstyle">
          <select id="bowstyle" name="bowstyle" value={profile.bowstyle} onChange={set("bowstyle")}>
            {BOWSTYLES.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </Field>
        <Field id="age_group" label="Age group">
          <select id="age_group" name="age_group" value={profile.age_group} onChange={set("age_group")}>
            {AGE_GROUPS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </Field>
        <Field id="gender" label="Gender">
          <select id="gender" name="gender" value={profile.gender} onChange={set("gender")}>
            {GENDERS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <ErrorText text={error} />
      <SubmitButton label="Join and start scoring" busy={busy} />
    </form>
  );
}
