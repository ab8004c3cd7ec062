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
import { deflateSync, crc32 } from "node:zlib";

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
    // Code loaded only when used (the QR scanner and its worker) goes into chunks.
    splitting: true,
    chunkNames: "chunk-[hash]",
    format: "esm",
    platform: "browser",
    metafile: true,
  });
  const manifest = {};
  // Chunks the entries import statically load with the shell, so the worker precaches them
  // too; chunks imported dynamically (the QR scanner) are cached when first used.
  const staticChunks = new Set();
  for (const [file, meta] of Object.entries(result.metafile.outputs)) {
    if (!meta.entryPoint || basename(file).startsWith("chunk-")) continue;
    for (const imported of meta.imports) {
      if (imported.kind === "import-statement") staticChunks.add(`/static/${basename(imported.path)}`);
    }
    const hashed = basename(file);
    const logical = hashed.replace(/-[A-Z0-9]+(\.[a-z]+)$/, "$1");
    manifest[logical] = hashed;
  }
  addInstallFiles(staging, manifest);
  copyFileSync(join(here, "static/index.html"), join(staging, "index.html"));
  manifest["index.html"] = "index.html";
  const sw = join(here, "src/sw.ts");
  if (existsSync(sw)) {
    // The worker precaches the app shell, so it is told the hashed names and a version that
    // changes with any of them (a changed sw.js is how browsers learn of a new build).
    const shell = Object.values(manifest).filter((name) => name !== "index.html").map((name) => `/static/${name}`);
    shell.push(...staticChunks);
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

/** Write `body` as `<stem>-<HASH><ext>` and record it under its logical name. */
function writeHashed(staging, manifest, logical, body) {
  const dot = logical.lastIndexOf(".");
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 8).toUpperCase();
  const name = `${logical.slice(0, dot)}-${hash}${logical.slice(dot)}`;
  writeFileSync(join(staging, name), body);
  manifest[logical] = name;
}

/**
 * What makes the app installable: the SVG icon, PNG icons drawn here from the same target
 * (home screens that want bitmaps), and the web app manifest naming them. All
 * content-hashed like the scripts; nothing binary is kept in the repository.
 */
function addInstallFiles(staging, manifest) {
  writeHashed(staging, manifest, "icon.svg", readFileSync(join(here, "static/icon.svg")));
  for (const size of [192, 512]) writeHashed(staging, manifest, `icon-${size}.png`, targetPng(size));
  const template = readFileSync(join(here, "static/app.webmanifest"), "utf8");
  const rendered = JSON.parse(template.replace(/\{\{([\w.-]+)\}\}/g, (_, name) => `/static/${manifest[name]}`));
  for (const size of [192, 512]) {
    rendered.icons.push({ src: `/static/${manifest[`icon-${size}.png`]}`, sizes: `${size}x${size}`, type: "image/png" });
  }
  writeHashed(staging, manifest, "app.webmanifest", JSON.stringify(rendered, null, 2) + "\n");
}

/** The icon's target as a `size`-pixel PNG: rings on the app's green, no drawing library. */
function targetPng(size) {
  const rings = [
    [0.78, [0xff, 0xff, 0xff]],
    [0.625, [0x1d, 0x1d, 0x1b]],
    [0.47, [0x2e, 0x7f, 0xc1]],
    [0.31, [0xd6, 0x3a, 0x2f]],
    [0.16, [0xf4, 0xc4, 0x30]],
  ];
  const row = size * 4 + 1;
  const raw = Buffer.alloc(row * size);
  for (let y = 0; y < size; y++) {
    raw[y * row] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const r = Math.hypot(x + 0.5 - size / 2, y + 0.5 - size / 2) / (size / 2);
      let color = [0x0b, 0x3d, 0x2e];
      for (const [radius, c] of rings) if (r <= radius) color = c;
      raw.set([...color, 0xff], y * row + 1 + x * 4);
    }
  }
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "latin1");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

if (args.includes("--tests")) await buildTests();
else await buildApp();
