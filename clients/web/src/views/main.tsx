// Placeholder entry point so the build runs; the views replace it.
import { render } from "preact";

function App() {
  return <main><h1>fast-shoot</h1><p>{location.pathname}</p></main>;
}

const root = document.getElementById("app");
if (root) render(<App />, root);
