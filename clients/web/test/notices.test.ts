import assert from "node:assert/strict";
import { test } from "node:test";
import type { NoticeEvent } from "../src/protocol/types";
import { RecentNotices, isForMe } from "../src/views/notices";
import { readScanned } from "../src/views/scan";

const lead = (archer: string, name: string): NoticeEvent => ({
  kind: "lead",
  round: "national",
  archer,
  text: `${name} has taken the lead!`,
  ends: 1,
});
const digest = (archer: string, text: string, ends: number): NoticeEvent => ({ kind: "digest", round: "national", archer, text, ends });
const board = (leader: string, other: string) => [
  { round: "national", rows: [{ archerId: leader, position: 1 }, { archerId: other, position: 2 }] },
];

test("a lead notice shows only while its archer still leads on this board", () => {
  const recent = new RecentNotices(3);
  recent.add(lead("c", "Chris"));
  assert.deepEqual(recent.current(board("c", "a")).map((n) => n.text), ["Chris has taken the lead!"]);
  assert.deepEqual(recent.current(board("a", "c")), []); // Alex overtook: Chris's notice is stale
  recent.add(lead("a", "Alex"));
  assert.deepEqual(recent.current(board("a", "c")).map((n) => n.text), ["Alex has taken the lead!"]);
});

test("a tie for first shows no lead notice", () => {
  const recent = new RecentNotices(3);
  recent.add(lead("c", "Chris"));
  const tied = [{ round: "national", rows: [{ archerId: "c", position: 1 }, { archerId: "a", position: 1 }] }];
  assert.deepEqual(recent.current(tied), []);
});

test("the same notice twice is not news; a newer digest replaces the older one's lines", () => {
  const recent = new RecentNotices(5);
  assert.equal(recent.add(lead("c", "Chris")), true);
  assert.equal(recent.add(lead("c", "Chris")), false);
  recent.add(digest("c", "Chris is 1st of 2 after 2 ends.", 2));
  recent.add(digest("a", "Alex is 2nd of 2 after 2 ends.", 2));
  assert.equal(recent.add(digest("a", "Alex is 2nd of 2 after 2 ends.", 2)), false);
  recent.add(digest("c", "Chris is 2nd of 2 after 4 ends (down 1).", 4));
  const texts = recent.current(board("a", "c")).map((n) => n.text);
  assert.deepEqual(texts, ["Chris is 2nd of 2 after 4 ends (down 1)."]);
});

test("an archer is told of lead changes in their round and their own digest line; a viewer of leads", () => {
  assert.equal(isForMe(lead("a", "Alex"), "c", "national"), true);
  assert.equal(isForMe({ ...lead("a", "Alex"), round: "york" }, "c", "national"), false);
  assert.equal(isForMe(digest("c", "Chris is 1st", 2), "c", "national"), true);
  assert.equal(isForMe(digest("a", "Alex is 2nd", 2), "c", "national"), false);
  assert.equal(isForMe(lead("a", "Alex"), null, null), true);
  assert.equal(isForMe(digest("a", "Alex is 2nd", 2), null, null), false);
});

test("a scanned join link joins; a device link keeps its secret fragment; anything else is refused", () => {
  const origin = "https://archery.example";
  assert.deepEqual(readScanned("https://archery.example/join/4821", origin), { kind: "path", path: "/join/4821" });
  assert.deepEqual(readScanned("https://archery.example/join/4821#archer=a&token=t", origin), {
    kind: "path",
    path: "/join/4821#archer=a&token=t",
  });
  assert.deepEqual(readScanned(" 4821 ", origin), { kind: "path", path: "/join/4821" });
  assert.deepEqual(readScanned("http://192.168.1.20:8080/join/4821", origin), {
    kind: "elsewhere",
    url: "http://192.168.1.20:8080/join/4821",
  });
  assert.deepEqual(readScanned("https://example.org/menu", origin), { kind: "other" });
  assert.deepEqual(readScanned("javascript:alert(1)//join/4821", origin), { kind: "other" });
  assert.deepEqual(readScanned("https://archery.example/join/48211", origin), { kind: "other" });
});
