// A relay in memory for session tests: a WebSocket class whose peer is a function.
import * as Y from "yjs";
import { decodeFrame, encodeFrame } from "../src/protocol/codec";
import type { Stamp } from "../src/protocol/types";

export const SHOOT = { code: "4821", shoot_id: "s1", title: "T", creator: "Sam", created_ms: 1, expires_ms: 2 ** 53 - 1, time_zone: "UTC" };

export function docWith(arrows: (number | string)[], stamp: Stamp): Y.Doc {
  const doc = new Y.Doc();
  doc.transact(() => {
    const m = new Y.Map<unknown>();
    doc.getMap("archers").set("a1", m);
    for (const [k, v] of Object.entries({ name: "Chris", round: "national", bowstyle: "recurve", age_group: "adult", gender: "open", finished: false, left: false, stamp })) m.set(k, v);
    m.set("arrows", Y.Array.from(arrows));
  });
  return doc;
}

export type Frame = Record<string, unknown>;
export type Handler = (msg: Frame, socket: number) => Frame[] | "close";

/** A WebSocket class whose peer is `handler`: each client frame gets the frames it returns. */
export function fakeRelay(handler: Handler) {
  let sockets = 0;
  const urls: string[] = [];
  class FakeSocket {
    readyState = 0;
    binaryType = "arraybuffer";
    onopen: ((e: Event) => void) | null = null;
    onmessage: ((e: MessageEvent) => void) | null = null;
    onclose: ((e: CloseEvent) => void) | null = null;
    onerror: ((e: Event) => void) | null = null;
    private readonly n = ++sockets;
    constructor(url: string) {
      urls.push(url);
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({} as Event);
      }, 1);
    }
    send(data: Uint8Array): void {
      const answer = handler(decodeFrame(data), this.n);
      setTimeout(() => {
        if (answer === "close") {
          this.readyState = 3;
          this.onclose?.({ code: 1006 } as CloseEvent);
          return;
        }
        for (const f of answer) {
          const bytes = encodeFrame({ v: 1, ...f });
          this.onmessage?.({ data: bytes.buffer } as MessageEvent);
        }
      }, 1);
    }
    close(): void {
      this.readyState = 3;
    }
  }
  return { socket: FakeSocket as unknown as typeof WebSocket, sockets: () => sockets, urls };
}

export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

