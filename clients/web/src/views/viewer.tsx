/**
 * `/view/{code}`: the live leaderboard for someone who is not scoring (a coach, a parent,
 * the organiser's laptop). No identity, so the relay treats the connection as a viewer
 * that never writes. Part 2 adds the big-screen layout on this route.
 */
import { Board } from "./board";
import { useRounds } from "./data";
import { describe } from "./errors";
import { useShoot } from "./hooks";
import { linkTo } from "./router";
import { SharePanel } from "./share";
import { ShootHeader, StatusBar, refusedShoot } from "./status";
import { NoticeCenter } from "./toasts";
import { Message } from "./ui";

export function ViewerScreen(props: { code: string }) {
  const { code } = props;
  const shoot = useShoot(code, null);
  const rounds = useRounds();
  if (shoot.problem) {
    return (
      <Message title={`Shoot ${code}`} text={describe(shoot.problem, code)}>
        <a class="button secondary" {...linkTo("/")}>
          Back to the start
        </a>
      </Message>
    );
  }
  const { client } = shoot;
  if (!client) return <Message title={`Shoot ${code}`} text="Loading…" loading />;
  const refused = refusedShoot(client);
  if (refused) {
    return (
      <Message title={`Shoot ${code}`} text={describe(refused, code)}>
        <a class="button secondary" {...linkTo("/")}>
          Back to the start
        </a>
      </Message>
    );
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
      <details class="card more">
        <summary>Share this shoot</summary>
        <SharePanel code={code} title={info?.title ?? ""} />
      </details>
    </main>
  );
}
