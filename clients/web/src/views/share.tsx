/**
 * Sharing a shoot: the big code to read out, the join link and the relay's QR code of it
 * (a phone's camera app opens the link), and one button that uses the phone's share sheet
 * (Web Share API) where there is one and copies the link otherwise.
 */
import { useState } from "preact/hooks";
import { isLoopbackUrl, useJoinUrl } from "./publicurl";

export function joinUrl(code: string): string {
  return `${location.origin}/join/${code}`;
}

export function viewUrl(code: string): string {
  return `${location.origin}/view/${code}`;
}

/** Share a link through the share sheet, or copy it; resolves to what happened. */
export async function shareOrCopy(
  url: string,
  title: string,
  text: string,
): Promise<"shared" | "copied" | "failed"> {
  if (typeof navigator.share === "function") {
    try {
      await navigator.share({ title, text, url });
      return "shared";
    } catch (error) {
      // The person closed the sheet: nothing to report. Other failures fall back to copying.
      if (error instanceof DOMException && error.name === "AbortError") return "shared";
    }
  }
  try {
    await navigator.clipboard.writeText(url);
    return "copied";
  } catch {
    return "failed";
  }
}

export function ShareButton(props: { url: string; title: string; text: string; label: string }) {
  const [result, setResult] = useState<string | null>(null);
  const canShare = typeof navigator.share === "function";
  const onClick = async () => {
    const outcome = await shareOrCopy(props.url, props.title, props.text);
    setResult(
      outcome === "copied"
        ? "Link copied."
        : outcome === "failed"
          ? "Could not copy: press and hold the link to copy it."
          : null,
    );
  };
  return (
    <>
      <button type="button" class="button secondary" onClick={onClick}>
        {canShare ? props.label : `Copy ${props.label.replace(/^Share /, "")}`}
      </button>
      {result && (
        <p class="hint" role="status">
          {result}
        </p>
      )}
    </>
  );
}

export function SharePanel(props: { code: string; title: string; compact?: boolean; joinUrl?: string }) {
  const url = useJoinUrl(props.code, props.joinUrl);
  const name = props.title || "an archery shoot";
  return (
    <section class="card share" aria-label="Share this shoot">
      <p class="label">Shoot code</p>
      <p class="big-code" data-testid="share-code">
        {props.code}
      </p>
      {!props.compact && (
        <img
          class="qr"
          src={`/api/shoots/${props.code}/qr.svg`}
          alt={`QR code of the join link for shoot ${props.code}`}
          width={220}
          height={220}
        />
      )}
      {isLoopbackUrl(url) && (
        <p class="banner warning" role="note" data-testid="loopback-warning">
          Phones cannot open this link or its QR code: it points at this computer itself (
          {new URL(url).host}). Open this page at the address the relay printed when it started
          (its address on your network), or start the relay with PUBLIC_URL set to it.
        </p>
      )}
      <p class="label">Join link</p>
      <p class="link" data-testid="join-link">
        <a href={url}>{url}</a>
      </p>
      <ShareButton
        url={url}
        title={name}
        text={`Join ${name} on fast-shoot with code ${props.code}`}
        label="Share join link"
      />
    </section>
  );
}
