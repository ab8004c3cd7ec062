import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClientsLike } from "../src/notification-click";
import { openFromNotification } from "../src/notification-click";
import { FALLBACK, readPushMessage } from "../src/push-message";

test("a relay's push message is shown as sent", () => {
  const raw = JSON.stringify({ title: "Club night", body: "Chris has taken the lead!", tag: "1234:lead:national", url: "/shoot/1234" });
  assert.deepEqual(readPushMessage(raw), {
    title: "Club night",
    body: "Chris has taken the lead!",
    tag: "1234:lead:national",
    url: "/shoot/1234",
  });
});

test("anything else shows the fallback, never raw bytes or a foreign page", () => {
  for (const raw of [null, "", "not json", "[]", "null", JSON.stringify({ title: "x" }), "x".repeat(5000)]) {
    assert.deepEqual(readPushMessage(raw), FALLBACK, String(raw).slice(0, 20));
  }
  const foreign = readPushMessage(JSON.stringify({ body: "hi", url: "https://evil.example/" }));
  assert.equal(foreign.url, "/");
  assert.equal(readPushMessage(JSON.stringify({ body: "hi", url: "//evil.example/shoot/1234" })).url, "/");
  assert.equal(readPushMessage(JSON.stringify({ body: "b".repeat(1000) })).body.length, 300);
});

function fakeClients(open: string[]) {
  const focused: string[] = [];
  const opened: string[] = [];
  const clients: ClientsLike = {
    matchAll: async () => open.map((url) => ({ url, focus: async () => focused.push(url) })),
    openWindow: async (url: string) => opened.push(url),
  };
  return { clients, focused, opened };
}

test("a tap opens the notice's shoot, or brings its open page forward", async () => {
  const none = fakeClients(["https://relay.example/"]);
  await openFromNotification(none.clients, { url: "/shoot/1234" });
  assert.deepEqual(none.opened, ["/shoot/1234"]);
  assert.deepEqual(none.focused, []);

  const open = fakeClients(["https://relay.example/", "https://relay.example/shoot/1234"]);
  await openFromNotification(open.clients, { url: "/shoot/1234" });
  assert.deepEqual(open.focused, ["https://relay.example/shoot/1234"]);
  assert.deepEqual(open.opened, []);

  const foreign = fakeClients([]);
  await openFromNotification(foreign.clients, { url: "//evil.example/x" });
  await openFromNotification(foreign.clients, null);
  assert.deepEqual(foreign.opened, ["/", "/"]);
});
