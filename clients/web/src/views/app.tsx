/** The screens, chosen by the path (see router.ts). */
import { ArcherScreen } from "./archer";
import { BigScreen } from "./bigscreen";
import { HomeScreen } from "./home";
import { JoinScreen } from "./join";
import { ResultsScreen } from "./results";
import { useRoute } from "./router";
import { ViewerScreen } from "./viewer";

export function App() {
  const route = useRoute();
  switch (route.screen) {
    case "home":
      return <HomeScreen />;
    case "join":
      return <JoinScreen key={route.code} code={route.code} />;
    case "shoot":
      return <ArcherScreen key={route.code} code={route.code} />;
    case "view":
      return route.big ? <BigScreen key={route.code} code={route.code} /> : <ViewerScreen key={route.code} code={route.code} />;
    case "results":
      return <ResultsScreen key={route.code} code={route.code} />;
    case "unknown":
      return <HomeScreen notice={`There is no page at ${route.path}. Create a shoot or join one here.`} />;
  }
}
