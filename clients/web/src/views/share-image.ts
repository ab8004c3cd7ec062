/**
 * The results as a PNG, drawn on a canvas from the data (never from HTML: a name is only
 * ever passed to `fillText`, so `<script>` in a name is drawn as those characters and
 * cannot become markup), then shared through the phone's share sheet where it takes
 * files (Web Share API level 2), or downloaded otherwise.
 */
import type { ResultsData, ResultsGroup } from "./results";

const WIDTH = 1080;
const MARGIN = 48;
const ROW = 44;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const INK = "#111827";
const MUTED = "#4b5563";
const ACCENT = "#1d4ed8";

/** Column left edges (name grows); score columns are right-aligned at these x. */
const COLUMNS = { pos: MARGIN, name: MARGIN + 64, score: 720, hits: 820, golds: 920, cls: WIDTH - MARGIN };

function height(data: ResultsData): number {
  let h = MARGIN + 60 + 40 + 24;
  for (const g of data.groups) h += 64 + ROW + g.rows.length * ROW + 24;
  if (data.groups.length === 0) h += ROW;
  return h + 40 + MARGIN;
}

/** Shorten `text` with an ellipsis until it fits `max` pixels in the current font. */
export function fitText(ctx: CanvasRenderingContext2D, text: string, max: number): string {
  if (ctx.measureText(text).width <= max) return text;
  let chars = Array.from(text);
  while (chars.length > 1 && ctx.measureText(`${chars.join("")}…`).width > max) chars = chars.slice(0, -1);
  return `${chars.join("")}…`;
}

function drawGroup(ctx: CanvasRenderingContext2D, group: ResultsGroup, top: number): number {
  let y = top + 44;
  ctx.fillStyle = ACCENT;
  ctx.font = `bold 32px ${FONT}`;
  ctx.textAlign = "left";
  ctx.fillText(fitText(ctx, group.roundName, WIDTH - 2 * MARGIN), MARGIN, y);
  y += 20 + ROW - 12;
  ctx.fillStyle = MUTED;
  ctx.font = `bold 22px ${FONT}`;
  ctx.fillText("Pos", COLUMNS.pos, y);
  ctx.fillText("Name", COLUMNS.name, y);
  ctx.textAlign = "right";
  ctx.fillText("Score", COLUMNS.score, y);
  ctx.fillText("Hits", COLUMNS.hits, y);
  ctx.fillText(group.metric ? "10s/Xs" : "Golds", COLUMNS.golds, y);
  ctx.fillText("Class", COLUMNS.cls, y);
  for (const row of group.rows) {
    y += ROW;
    ctx.fillStyle = INK;
    ctx.font = `26px ${FONT}`;
    ctx.textAlign = "left";
    ctx.fillText(String(row.position), COLUMNS.pos, y);
    ctx.fillText(fitText(ctx, row.name, COLUMNS.score - 120 - COLUMNS.name), COLUMNS.name, y);
    ctx.textAlign = "right";
    ctx.font = `bold 26px ${FONT}`;
    ctx.fillText(String(row.total), COLUMNS.score, y);
    ctx.font = `26px ${FONT}`;
    ctx.fillText(String(row.hits), COLUMNS.hits, y);
    ctx.fillText(group.metric ? `${row.golds - row.xs}/${row.xs}` : String(row.golds), COLUMNS.golds, y);
    ctx.fillText(row.classification ?? "–", COLUMNS.cls, y);
  }
  return y + 24;
}

/** Draw the results on a new canvas, sized to fit every row. */
export function drawResults(data: ResultsData): HTMLCanvasElement {
  const canvas = document.createElement("canvas");
  canvas.width = WIDTH;
  canvas.height = height(data);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("no 2D canvas");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.textBaseline = "alphabetic";
  ctx.fillStyle = INK;
  ctx.font = `bold 44px ${FONT}`;
  ctx.fillText(fitText(ctx, data.title, WIDTH - 2 * MARGIN), MARGIN, MARGIN + 44);
  ctx.fillStyle = MUTED;
  ctx.font = `24px ${FONT}`;
  const sub = `${data.date} · ${data.place} · ${data.ended ? "Final results" : "Results so far"}`;
  ctx.fillText(fitText(ctx, sub, WIDTH - 2 * MARGIN), MARGIN, MARGIN + 90);
  let y = MARGIN + 100;
  for (const group of data.groups) y = drawGroup(ctx, group, y);
  if (data.groups.length === 0) {
    ctx.fillStyle = INK;
    ctx.fillText("No archers took part.", MARGIN, y + ROW);
  }
  ctx.fillStyle = MUTED;
  ctx.font = `20px ${FONT}`;
  ctx.textAlign = "left";
  ctx.fillText(`fast-shoot · shoot ${data.code}`, MARGIN, canvas.height - MARGIN);
  return canvas;
}

export function resultsPng(data: ResultsData): Promise<Blob> {
  const canvas = drawResults(data);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no PNG"))), "image/png"),
  );
}

/** A file name people recognise: "club-night-results.png". */
export function imageName(data: ResultsData): string {
  const slug = data.title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return `${slug || `shoot-${data.code}`}-results.png`;
}

/** Share the image where the browser can share files; download it otherwise. */
export async function shareResultsImage(data: ResultsData): Promise<"shared" | "downloaded" | "failed"> {
  let blob: Blob;
  try {
    blob = await resultsPng(data);
  } catch {
    return "failed";
  }
  const file = new File([blob], imageName(data), { type: "image/png" });
  if (typeof navigator.canShare === "function" && navigator.canShare({ files: [file] })) {
    try {
      await navigator.share({ files: [file], title: `${data.title}: results` });
      return "shared";
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") return "shared";
      // Anything else (no permission, a share target failing): download instead.
    }
  }
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = file.name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return "downloaded";
}
