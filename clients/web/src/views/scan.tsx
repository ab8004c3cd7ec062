/**
 * "Scan a code" on the join screen: the phone's camera reads a shoot's QR code in the app.
 *
 * A phone's own camera app opening the QR code's link is the main path; this is for
 * browsers where that is awkward (an installed app, a tablet). The camera comes through
 * `getUserMedia`, which only a secure context has (HTTPS, or localhost); the decoder is
 * `qr-scanner`, loaded only when asked for: it uses the native `BarcodeDetector` where
 * the browser has one (Android Chrome) and its own decoder in a worker elsewhere. A join
 * link joins; anything else, or no camera, says so and leaves typing the code.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { navigate } from "./router";

/** What a scanned text means to the app: an in-app path, another relay's page, or nothing. */
export type Scanned = { kind: "path"; path: string } | { kind: "elsewhere"; url: string } | { kind: "other" };

const JOIN_PATH = /^\/join\/(\d{4})\/?$/;

export function readScanned(text: string, origin: string): Scanned {
  const trimmed = text.trim();
  if (/^\d{4}$/.test(trimmed)) return { kind: "path", path: `/join/${trimmed}` };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return { kind: "other" };
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || !JOIN_PATH.test(url.pathname)) return { kind: "other" };
  if (url.origin === origin) return { kind: "path", path: url.pathname + url.hash };
  return { kind: "elsewhere", url: url.href };
}

type Phase = { kind: "idle" } | { kind: "starting" } | { kind: "scanning" } | { kind: "problem"; text: string };

export function ScanCode() {
  const [phase, setPhase] = useState<Phase>({ kind: "idle" });
  if (phase.kind === "idle" || phase.kind === "problem") {
    return (
      <div class="scan">
        <button type="button" class="button secondary" onClick={() => setPhase({ kind: "starting" })}>
          Scan a code
        </button>
        {phase.kind === "problem" && (
          <p class="error" role="alert" data-testid="scan-problem">
            {phase.text}
          </p>
        )}
      </div>
    );
  }
  return <Scanner onProblem={(text) => setPhase({ kind: "problem", text })} onStop={() => setPhase({ kind: "idle" })} />;
}

/** The longest side a frame is decoded at: enough for a code a quarter of the frame wide. */
const SCAN_PIXELS = 720;
const NO_CAMERA = "No camera could be opened here (none found, or permission refused). Type the four-digit code instead.";
const NOT_OURS = "That QR code is not a fast-shoot join link. Scan the code the organiser shows, or type the four digits.";

function Scanner(props: { onProblem: (text: string) => void; onStop: () => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [status, setStatus] = useState("Starting the camera…");
  // Kept in a ref: the parent re-renders as the person types, and that must not restart
  // the camera.
  const problem = useRef(props.onProblem);
  problem.current = props.onProblem;
  useEffect(() => {
    const onProblem = (text: string) => problem.current(text);
    let live = true;
    let destroyed = false;
    let scanner: { destroy(): void } | null = null;
    const stop = () => {
      if (!destroyed && scanner) scanner.destroy();
      destroyed = true;
    };
    (async () => {
      if (!navigator.mediaDevices?.getUserMedia || !video.current) {
        onProblem(
          window.isSecureContext
            ? NO_CAMERA
            : "The camera only works on a secure (https) address. Type the four-digit code instead.",
        );
        return;
      }
      const { default: QrScanner } = await import("qr-scanner");
      if (!live || !video.current) return;
      const qr = new QrScanner(
        video.current,
        (result) => {
          const found = readScanned(result.data, location.origin);
          if (found.kind === "other") {
            setStatus(NOT_OURS);
            return; // keep scanning: the right code may come next
          }
          live = false;
          stop();
          if (found.kind === "path") navigate(found.path);
          else location.assign(found.url);
        },
        {
          returnDetailedScanResult: true,
          preferredCamera: "environment",
          maxScansPerSecond: 4,
          onDecodeError: () => undefined,
          // The whole picture, not the library's default middle square: a code held close
          // fills the frame, and the person should not have to aim.
          calculateScanRegion: (v) => {
            const scale = Math.min(1, SCAN_PIXELS / Math.max(v.videoWidth, v.videoHeight));
            const width = v.videoWidth;
            const height = v.videoHeight;
            return { x: 0, y: 0, width, height, downScaledWidth: Math.round(width * scale), downScaledHeight: Math.round(height * scale) };
          },
        },
      );
      scanner = qr;
      try {
        await qr.start();
        if (live) setStatus("Point the camera at the shoot's QR code.");
      } catch {
        stop();
        if (live) onProblem(NO_CAMERA);
      }
    })().catch(() => live && onProblem(NO_CAMERA));
    return () => {
      live = false;
      stop();
    };
  }, []);
  return (
    <div class="scan scanning" data-testid="scanner">
      <video ref={video} class="scan-video" muted playsInline aria-label="Camera view" />
      <p role="status" data-testid="scan-status">
        {status}
      </p>
      <button type="button" class="button secondary" onClick={props.onStop}>
        Stop scanning
      </button>
    </div>
  );
}
