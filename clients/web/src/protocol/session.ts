// Placeholder until the session lands: the signature the views code against.
import type { OpenShootOptions, ShootClient } from "./types";

export async function openShoot(options: OpenShootOptions): Promise<ShootClient> {
  throw new Error(`openShoot(${options.code}) is not implemented yet`);
}
