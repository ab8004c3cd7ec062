// Builds the browser client into ../../relay/static/dist (or --out DIR):
//   main-<hash>.js, app-<hash>.css  content-hashed, served with immutable cache headers
//   sw.js                          the service worker, fixed name (served at /sw.js)
//   index.html                     the shell template; the relay fills in the hashed names
//   manifest.json                  {"main.js": "main-<hash>.js", "app.css": "app-<hash>.css", ...}
// With --tests it instead bundles test/*.test.ts for node's test runner into .test-build/.
// Run through the Python package's build hook (hatch_build.py), or by hand with `npm run build`.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(here, "../../relay/static/dist"));

const common = {
  bundle: true,
  minify: true,
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  logLevel: "warning",
  legalComments: "none",
};

async function buildTests() {
  const dir = join(here, ".test-build");
  rmSync(dir, { recursive: true, force: true });
  const entries = readdirSync(join(here, "test"))
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => join(here, "test", name));
  // Command-line tools the Python tests drive (interop and ranking parity).
  for (const name of readdirSync(join(here, "test/tools"))) {
    if (name.endsWith(".ts")) entries.push(join(here, "test/tools", name));
  }
  await esbuild.build({
    ...common,
    minify: false,
    target: "node24",
    entryPoints: entries,
    outdir: dir,
    outbase: join(here, "test"),
    outExtension: { ".js": ".mjs" },
    platform: "node",
    format: "esm",
    packages: "external",
    sourcemap: "inline",
  });
}

async function buildApp() {
  const staging = `${out}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const result = await esbuild.build({
    ...common,
    entryPoints: { main: join(here, "src/views/main.tsx"), app: join(here, "static/app.css") },
    outdir: staging,
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    format: "esm",
    platform: "browser",
    metafile: true,
  });
  const manifest = {};
  for (const [file, meta] of Object.entries(result.metafile.outputs)) {
    if (!meta.entryPoint) continue;
    const hashed = basename(file);
    const logical = hashed.replace(/-[A-Z0-9]+(\.[a-z]+)$/, "$1");
    manifest[logical] = hashed;
  }
  copyFileSync(join(here, "static/index.html"), join(staging, "index.html"));
  manifest["index.html"] = "index.html";
  const sw = join(here, "src/sw.ts");
  if (existsSync(sw)) {
    // The worker precaches the app shell, so it is told the hashed names and a version that
    // changes with any of them (a changed sw.js is how browsers learn of a new build).
    const shell = Object.values(manifest).filter((name) => name !== "index.html").map((name) => `/static/${name}`);
    const digest = createHash("sha256");
    for (const name of Object.values(manifest).sort()) digest.update(readFileSync(join(staging, name)));
    await esbuild.build({
      ...common,
      entryPoints: [sw],
      outfile: join(staging, "sw.js"),
      format: "iife",
      define: {
        __SHELL_ASSETS__: JSON.stringify(shell),
        __BUILD_VERSION__: JSON.stringify(digest.digest("hex").slice(0, 16)),
      },
    });
    // A fixed name: browsers look for updates of the worker at the URL it was registered at.
    manifest["sw.js"] = "sw.js";
  }
  writeFileSync(join(staging, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  // Swap the finished build in whole, so a running relay never sees half of one.
  rmSync(out, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(staging, out);
}

if (args.includes("--tests")) await buildTests();
else await buildApp();
