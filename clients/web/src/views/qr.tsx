/**
 * A QR code drawn on this device, for links that must not leave it: the "continue on
 * another device" link carries the archer's write token, so asking the relay for an image
 * of it would put the secret in a request. The modules become one SVG path built from
 * numbers (never from HTML strings).
 */
import { encode } from "uqr";

export function QrCode(props: { text: string; label: string; size?: number; testId?: string }) {
  const { data, size } = encode(props.text, { ecc: "M", border: 2 });
  let d = "";
  data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) d += `M${x} ${y}h1v1h-1z`;
    }),
  );
  const px = props.size ?? 220;
  return (
    <svg
      class="qr"
      role="img"
      aria-label={props.label}
      viewBox={`0 0 ${size} ${size}`}
      width={px}
      height={px}
      shape-rendering="crispEdges"
      data-testid={props.testId}
    >
      <rect width={size} height={size} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
