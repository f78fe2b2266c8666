import { describe, expect, test } from "vitest";
import type { Conversation, Message } from "../api/types.ts";
import { withNewestPage, withNewVersion, withOlderPage } from "./conversation-pages.ts";

/** A path m1 → m2 → … → mN (each the parent of the next). */
function message(index: number, extra: Partial<Message> = {}): Message {
  return {
    id: `m${index}`, parentId: index === 1 ? null : `m${index - 1}`, role: index % 2 === 1 ? "user" : "assistant", content: `text ${index}`,
    status: "completed", createdAt: "", model: null, taskId: null, error: null, siblings: { index: 0, count: 1, ids: [`m${index}`] }, ...extra,
  };
}
function pageOf(from: number, to: number, hasMore = from > 1): Conversation {
  const messages = Array.from({ length: to - from + 1 }, (_, offset) => message(from + offset));
  return { id: "c", title: null, createdAt: "", updatedAt: "", activeGeneration: null, messages, hasMore, nextCursor: hasMore ? `before-m${from}` : null };
}
const ids = (conversation: Conversation) => conversation.messages.map((entry) => entry.id);

describe("conversation pages", () => {
  test("an older page joins before the shown oldest, and its cursor becomes the next", () => {
    const joined = withOlderPage(pageOf(6, 10), pageOf(1, 5));
    expect(ids(joined)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10"]);
    expect(joined).toMatchObject({ hasMore: false, nextCursor: null });
  });

  test("an older page of another branch (switched meanwhile) is ignored", () => {
    const shown = pageOf(6, 10);
    const elsewhere = { ...pageOf(1, 5), messages: pageOf(1, 5).messages.map((entry) => ({ ...entry, id: `x${entry.id}` })) };
    expect(withOlderPage(shown, elsewhere)).toBe(shown);
  });

  test("a fresh newest page keeps the older pages it continues, and replaces a branch it does not", () => {
    const shown = withOlderPage(pageOf(6, 10), pageOf(1, 5));
    const refreshed = withNewestPage(shown, pageOf(8, 12));
    expect(ids(refreshed)).toEqual(Array.from({ length: 12 }, (_, index) => `m${index + 1}`));
    expect(refreshed).toMatchObject({ hasMore: false, nextCursor: null });
    const otherBranch = { ...pageOf(8, 9), messages: [message(8, { id: "y8" }), message(9, { id: "y9", parentId: "y8" })] };
    expect(ids(withNewestPage(shown, otherBranch))).toEqual(["y8", "y9"]);
    expect(withNewestPage(null, pageOf(1, 3))).toEqual(pageOf(1, 3));
  });

  test("a new version replaces the old one in place, one more among its siblings, and drops what followed it", () => {
    const shown = pageOf(1, 4).messages;
    const edited = withNewVersion(shown, "m3", [message(30, { id: "e3", parentId: "m2" }), message(31, { id: "e4", parentId: "e3" })]);
    expect(edited.map((entry) => entry.id)).toEqual(["m1", "m2", "e3", "e4"]);
    expect(edited[2]?.siblings).toEqual({ index: 1, count: 2, ids: ["m3", "e3"] });
    expect(withNewVersion(shown, undefined, [message(5)]).map((entry) => entry.id)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
  });
});
