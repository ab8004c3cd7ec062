/**
 * "Continue on another device": the archer's id and write token as a link and a QR code
 * drawn on this phone, so the archer's tablet scans it and scores as them. It is a secret
 * (anyone holding it can write this archer's score), so it sits behind a disclosure on
 * the archer's own screen only, the token travels in the fragment (never sent to a server,
 * never in a log), and the code is drawn here, not fetched.
 */
import { useState } from "preact/hooks";
import type { Identity } from "../protocol/index";
import { deviceLink } from "./join";
import { useJoinUrl } from "./publicurl";
import { QrCode } from "./qr";
import { ShareButton } from "./share";

export function DeviceHandoff(props: { identity: Identity }) {
  const { code, archerId, token } = props.identity;
  const [open, setOpen] = useState(false);
  const origin = new URL(useJoinUrl(code)).origin;
  const link = deviceLink(code, archerId, token).replace(location.origin, origin);
  return (
    <details class="card more" onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>Continue on another device</summary>
      <p>
        Scan this code with your other phone or tablet, or open the link there, to score as yourself on it
        too. It is your secret: show it and send it only to yourself.
      </p>
      {/* Drawn only while open, so the secret is not on screen by accident. */}
      {open && <QrCode text={link} label="QR code of your link to continue on another device" testId="device-qr" />}
      <p class="link" data-testid="device-link">
        {link}
      </p>
      <ShareButton url={link} title="Continue scoring" text="Continue scoring on this device" label="Share this link" />
    </details>
  );
}
