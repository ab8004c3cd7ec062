// The fast-shoot protocol module: the browser twin of the Python SDK (clients/), free of any
// UI framework so that other apps can use it on their own. See docs/web-client.md.
export type {
  Arrow,
  Profile,
  ArcherState,
  Stamp,
  Derived,
  ArcherEntry,
  ShootInfo,
  Identity,
  Connection,
  Status,
  Replaced,
  NoticeEvent,
  ShootClient,
  OpenShootOptions,
} from "./types";
export { openShoot } from "./session";
export {
  ApiError,
  createShoot,
  joinShoot,
  fetchRounds,
  readShoot,
  fetchPushKey,
  subscribePush,
  unsubscribePush,
} from "./api";
export type { CreatedShoot, JoinRequest, RoundInfo, ShootRead } from "./api";
export {
  rememberProfile,
  rememberedProfile,
  rememberIdentity,
  identityFor,
  forgetIdentity,
  deviceId,
} from "./storage";
export type { RememberedProfile } from "./storage";
