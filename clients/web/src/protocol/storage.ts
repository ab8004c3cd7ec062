// What a device remembers across visits, in IndexedDB: the archer's profile (to prefill the
// join form), one identity per shoot code, and the device id stamped into every write.
import type { Identity, Profile } from "./types";
import { idbGet, idbPut, idbDelete } from "./idb";

export interface RememberedProfile extends Profile {
  name: string;
  round: string;
}

const PROFILE_KEY = "profile";
const DEVICE_KEY = "device";

export async function rememberProfile(profile: RememberedProfile): Promise<void> {
  await idbPut("settings", PROFILE_KEY, profile);
}

export async function rememberedProfile(): Promise<RememberedProfile | null> {
  return ((await idbGet("settings", PROFILE_KEY)) as RememberedProfile | undefined) ?? null;
}

export async function rememberIdentity(identity: Identity): Promise<void> {
  await idbPut("identities", identity.code, identity);
}

export async function identityFor(code: string): Promise<Identity | null> {
  return ((await idbGet("identities", code)) as Identity | undefined) ?? null;
}

export async function forgetIdentity(code: string): Promise<void> {
  await idbDelete("identities", code);
}

/** A random id for this browser, made once: the tie-break in every stamp it issues. */
export function newDeviceId(prefix = "web"): string {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export async function deviceId(): Promise<string> {
  const known = (await idbGet("settings", DEVICE_KEY)) as string | undefined;
  if (known) return known;
  const made = newDeviceId();
  await idbPut("settings", DEVICE_KEY, made);
  return made;
}
