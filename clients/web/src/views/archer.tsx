/**
 * `/shoot/{code}`: an archer's own screen in a joined shoot. Scoring comes first (the
 * keypad, big enough for one thumb), then the live leaderboard. Every tap is written
 * through the protocol module, which puts it in the IndexedDB outbox and shows it at once,
 * so nothing here waits for the network.
 */
import { useEffect, useState } from "preact/hooks";
import type { Identity } from "../protocol/index";
import { identityFor } from "../protocol/index";
import { Board } from "./board";
import { useRounds } from "./data";
import { describe } from "./errors";
import { useShoot } from "./hooks";
import { DeviceHandoff } from "./handoff";
import { rememberRecent } from "./recent";
import { navigate } from "./router";
import { Scorer } from "./scorer";
import { SharePanel } from "./share";
import { ReplacedBanner, ShootHeader, StatusBar, refusedShoot } from "./status";
import { NoticeCenter } from "./toasts";
import { Message, ShootTrouble } from "./ui";

export function ArcherScreen(props: { code: string }) {
  const { code } = props;
  const [identity, setIdentity] = useState<Identity | null | undefined>(undefined);
  useEffect(() => {
    let live = true;
    identityFor(code)
      .then((found) => {
        if (!live) return;
        if (found) setIdentity(found);
        else navigate(`/join/${code}`, true); // not joined on this device yet
      })
      .catch(() => live && navigate(`/join/${code}`, true));
    return () => {
      live = false;
    };
  }, [code]);

  const shoot = useShoot(code, identity ?? undefined);
  const rounds = useRounds();
  const { client } = shoot;
  const info = client?.shoot() ?? null;
  const heading = info ? info.title || `${info.creator}'s shoot` : null;
  useEffect(() => {
    if (heading) rememberRecent(code, heading);
  }, [code, heading]);

  if (shoot.problem) {
    return <ShootTrouble code={code} text={describe(shoot.problem, code)} />;
  }
  if (!client || !identity) return <Message title={`Shoot ${code}`} text="Loading…" loading />;

  const refused = refusedShoot(client);
  if (refused) {
    return <ShootTrouble code={code} text={describe(refused, code)} />;
  }
  return (
    <main class="page archer">
      <ShootHeader code={code} info={info} />
      <StatusBar client={client} rounds={rounds} code={code} />
      {shoot.replaced && (
        <ReplacedBanner
          replaced={shoot.replaced}
          rounds={rounds}
          onClose={shoot.dismissReplaced}
          onRestore={() => {
            // Written again as the newest state, as `fast-shoot restore` does.
            client.write(shoot.replaced!.mine).catch(() => undefined); // a refusal shows in the status bar
            shoot.dismissReplaced();
          }}
        />
      )}
      <Scorer client={client} rounds={rounds} />
      <NoticeCenter client={client} rounds={rounds} title={info?.title || `Shoot ${code}`} />
      <Board client={client} rounds={rounds} />
      <DeviceHandoff identity={identity} />
      <details class="card more">
        <summary>Invite others to this shoot</summary>
        <SharePanel code={code} title={info?.title ?? ""} />
      </details>
    </main>
  );
}
