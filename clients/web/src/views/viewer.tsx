/**
 * `/view/{code}`: the live leaderboard for someone who is not scoring (a coach, a parent,
 * the organiser's laptop). No identity, so the relay treats the connection as a viewer
 * that never writes. `?big` gives the big-screen layout (bigscreen.tsx); an ended shoot
 * shows its final results.
 */
import { Board } from "./board";
import { useRounds } from "./data";
import { describe } from "./errors";
import { useShoot } from "./hooks";
import { linkTo } from "./router";
import { ResultsScreen } from "./results";
import { SharePanel } from "./share";
import { ShootHeader, StatusBar, refusedShoot } from "./status";
import { NoticeCenter } from "./toasts";
import { Message, ShootTrouble } from "./ui";

export function ViewerScreen(props: { code: string }) {
  const { code } = props;
  const shoot = useShoot(code, null);
  const rounds = useRounds();
  if (shoot.problem) {
    return <ShootTrouble code={code} text={describe(shoot.problem, code)} />;
  }
  const { client } = shoot;
  if (!client) return <Message title={`Shoot ${code}`} text="Loading…" loading />;
  const refused = refusedShoot(client);
  // An ended shoot: its final results (the relay keeps them for a day), read-only.
  if (refused?.code === "expired") return <ResultsScreen code={code} />;
  if (refused) {
    return <ShootTrouble code={code} text={describe(refused, code)} />;
  }
  const info = client.shoot();
  return (
    <main class="page">
      <ShootHeader code={code} info={info} />
      <StatusBar client={client} rounds={rounds} code={code} />
      <NoticeCenter client={client} rounds={rounds} title={info?.title || `Shoot ${code}`} />
      <Board client={client} rounds={rounds} />
      <p class="center">
        <a class="button secondary" {...linkTo(`/join/${code}`)}>
          Join this shoot as an archer
        </a>
      </p>
      <p class="center">
        <a class="button secondary" {...linkTo(`/results/${code}`)}>
          Results to print or share
        </a>{" "}
        <a class="button secondary" href={`/view/${code}?big`}>
          Big screen (TV)
        </a>
      </p>
      <details class="card more">
        <summary>Share this shoot</summary>
        <SharePanel code={code} title={info?.title ?? ""} />
      </details>
    </main>
  );
}
