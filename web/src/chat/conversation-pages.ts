import type { Conversation, Message } from "../api/types.ts";

/**
 * The shown part of a conversation's active path is the newest page plus older pages loaded on
 * scroll (GET /api/conversations/:id pages newest first, PROTOCOL.md 13.2). A message's parent is
 * the message before it on the path, so any message found in both lists has the same ancestors
 * in both: that is what lets pages join without a gap or a repeat, whatever branch is shown.
 */

/** A fresh newest page over what is shown: the older pages already loaded stay when it continues them. */
export function withNewestPage(shown: Conversation | null, fresh: Conversation): Conversation {
  const joinAt = fresh.hasMore && shown ? shown.messages.findIndex((message) => message.id === fresh.messages[0]?.id) : -1;
  if (!shown || joinAt <= 0) return fresh;
  return { ...fresh, messages: [...shown.messages.slice(0, joinAt), ...fresh.messages], hasMore: shown.hasMore, nextCursor: shown.nextCursor };
}

/** An older page before what is shown; ignored unless its newest message is the parent of the shown oldest (the branch changed meanwhile). */
export function withOlderPage(shown: Conversation, older: Conversation): Conversation {
  const oldestShown = shown.messages[0];
  const newestOlder = older.messages.at(-1);
  if (!oldestShown || !newestOlder || oldestShown.parentId !== newestOlder.id) return shown;
  return { ...shown, messages: [...older.messages, ...shown.messages], hasMore: older.hasMore, nextCursor: older.nextCursor };
}

/**
 * After an edit or a regenerate: the path up to the replaced message, then the new version (one
 * more among its siblings) and what follows it. `replacedId` undefined appends (a plain send).
 */
export function withNewVersion(messages: readonly Message[], replacedId: string | undefined, added: readonly Message[]): Message[] {
  const at = replacedId === undefined ? -1 : messages.findIndex((message) => message.id === replacedId);
  if (at < 0) return [...messages, ...added];
  const replaced = messages[at];
  const [first, ...rest] = added;
  if (!replaced || !first) return [...messages.slice(0, at), ...added];
  const ids = [...(replaced.siblings?.ids ?? [replaced.id]), first.id];
  return [...messages.slice(0, at), { ...first, parentId: replaced.parentId ?? null, siblings: { index: ids.length - 1, count: ids.length, ids } }, ...rest];
}
