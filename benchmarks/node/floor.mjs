// The optional Node reference of `fast-shoot bench`: the `ws` library's broadcast, one
// `ws.send` per subscriber, with the session shape of the Python floor
// (benchmarks/floor.py): the first binary message is the relay's CBOR hello (only its
// `shoot` text is read, as the room) and is answered with one small frame; every later
// message goes, unchanged, to everyone in the room, the sender included. A plain HTTP
// request (the readiness probe) gets `200 ok`. permessage-deflate is off, as on the relay.
//
// Run: node floor.mjs --port N   (with `ws` installed from package-lock.json)

import http from "node:http";
import { WebSocketServer } from "ws";

const MAX_CLIENT_FRAME_BYTES = 64 * 1024;
const JOINED = Buffer.from([0xa0]); // an empty CBOR map, the stand-in for welcome
const SHOOT_KEY = Buffer.from([0x65, ...Buffer.from("shoot")]); // CBOR text "shoot"

function argPort() {
  const at = process.argv.indexOf("--port");
  const port = at >= 0 ? Number(process.argv[at + 1]) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error("usage: node floor.mjs --port N");
  }
  return port;
}

/** The text value after the key "shoot" in a CBOR map (short text strings only). */
function shootOf(hello) {
  const at = hello.indexOf(SHOOT_KEY);
  if (at < 0) return "";
  let pos = at + SHOOT_KEY.length;
  const head = hello[pos++];
  if (head === undefined || head >> 5 !== 3) return "";
  let length = head & 0x1f;
  if (length === 24) length = hello[pos++];
  else if (length > 24) return "";
  return hello.subarray(pos, pos + length).toString("utf8");
}

const rooms = new Map();
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-length": "2", connection: "close" });
  res.end("ok");
});
const wss = new WebSocketServer({
  server,
  perMessageDeflate: false,
  maxPayload: MAX_CLIENT_FRAME_BYTES,
});

wss.on("connection", (ws) => {
  let room = null;
  ws.on("message", (data, isBinary) => {
    if (!isBinary) return;
    if (room === null) {
      const shoot = shootOf(data);
      room = rooms.get(shoot);
      if (room === undefined) {
        room = new Set();
        rooms.set(shoot, room);
      }
      ws.send(JOINED, { binary: true });
      room.add(ws);
      return;
    }
    for (const peer of room) peer.send(data, { binary: true });
  });
  ws.on("close", () => {
    if (room !== null) room.delete(ws);
  });
  ws.on("error", () => ws.terminate());
});

server.listen(argPort(), "127.0.0.1");
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
