import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase, type TestDatabase } from "../../test/support/servers/open-test-database.ts";
import type { TurnPlacement } from "./accept-turn.ts";
import { decodePathCursor, encodePathCursor, type PathPage } from "./conversation-path.ts";
import { createConversationsRepository, type ConversationsRepository } from "./conversations-repository.ts";
import { selectRows, type Database } from "./database.ts";
import { insertHistory } from "./insert-history.ts";
import { createMessagesRepository, type MessagesRepository } from "./messages-repository.ts";
import { createUsersRepository } from "./users-repository.ts";

// The tree walks are recursive CTEs: the same on both drivers (PGlite is what `npm start` uses without DATABASE_URL).
describe.each(["postgres", "pglite"] as const)("conversation branches and paging on %s", (kind) => {
  let database: Database;
  let opened: TestDatabase | undefined;
  let conversations: ConversationsRepository;
  let messages: MessagesRepository;
  let taskCounter = 0;

  beforeAll(async () => {
    opened = await openTestDatabase(kind, "branches");
    database = opened.database;
    conversations = createConversationsRepository(database.db);
    messages = createMessagesRepository(database.db);
  }, 60_000);
  afterAll(async () => {
    await opened?.close();
  });

  async function newConversation() {
    const user = await createUsersRepository(database.db).create(`branches-${kind}-${++taskCounter}@example.com`, "x");
    const conversation = await conversations.create(user.id, null);
    return { userId: user.id, conversationId: conversation.id };
  }

  /** One turn, answered and saved with `answer` (the worker's begin and save). */
  async function turn(at: { userId: string; conversationId: string }, content: string | undefined, placement: TurnPlacement, answer: string) {
    const taskId = `task_branch_${kind}_${++taskCounter}`;
    const accepted = await messages.acceptTurn({
      conversationId: at.conversationId, userId: at.userId, userContent: content, taskId, requestedModel: undefined,
      models: { defaultModel: "m", allowed: ["m"] }, activeLimit: 5, placement,
    });
    if (accepted.kind !== "accepted") throw new Error(`turn not accepted: ${accepted.kind}`);
    const begun = await messages.beginAttempt(taskId, 1);
    await messages.finish(taskId, 1, { status: "completed", content: answer, lastSeq: 1, inputTokens: 1, outputTokens: 1, errorCode: null, errorMessage: null });
    return { ...accepted, history: begun?.history, taskId };
  }

  async function page(at: { userId: string; conversationId: string }, limit = 50, before?: string): Promise<PathPage> {
    const result = await conversations.pathPage(at.userId, at.conversationId, { limit, before });
    if (result === undefined || result === "before-unknown") throw new Error(`no page: ${String(result)}`);
    return result;
  }
  const texts = (result: PathPage) => result.messages.map((message) => message.content);

  it("edits and regenerates add versions beside the old ones; the model sees only the active path", async () => {
    const at = await newConversation();
    const first = await turn(at, "q1", { kind: "append" }, "a1");
    await turn(at, "q2", { kind: "append" }, "a2");
    // Regenerate the last reply: a sibling of a2, and nothing is deleted.
    const regenerated = await turn(at, undefined, { kind: "regenerate", messageId: undefined }, "a2 again");
    expect(regenerated.history).toEqual([
      { role: "user", content: "q1" }, { role: "assistant", content: "a1" }, { role: "user", content: "q2" },
    ]);
    // Edit the first question: a sibling of q1 whose reply sees only the edited question.
    const edited = await turn(at, "q1 edited", { kind: "edit", messageId: first.user!.id }, "a1 for the edit");
    expect(edited.user?.parentId).toBeNull();
    expect(edited.history).toEqual([{ role: "user", content: "q1 edited" }]);
    // Appending goes after the active leaf (the edit's reply), on its branch only.
    const appended = await turn(at, "q3", { kind: "append" }, "a3");
    expect(appended.history).toEqual([
      { role: "user", content: "q1 edited" }, { role: "assistant", content: "a1 for the edit" }, { role: "user", content: "q3" },
    ]);

    const current = await page(at);
    expect(texts(current)).toEqual(["q1 edited", "a1 for the edit", "q3", "a3"]);
    expect(current.messages[0]?.siblings).toEqual({ index: 1, count: 2, ids: [first.user!.id, edited.user!.id] });
    expect(current.messages[1]?.siblings).toMatchObject({ index: 0, count: 1 });
    expect(current.hasMore).toBe(false);
    expect((await messages.listForConversation(at.conversationId)).map((row) => row.content).sort()).toEqual(
      ["a1", "a1 for the edit", "a2", "a2 again", "a3", "q1", "q1 edited", "q2", "q3"],
    );

    // Back to the first version of q1: the newest message under it is the regenerated a2.
    expect(await conversations.chooseBranch(at.userId, at.conversationId, first.user!.id)).toBe("switched");
    const back = await page(at);
    expect(texts(back)).toEqual(["q1", "a1", "q2", "a2 again"]);
    expect(back.messages[3]?.siblings).toMatchObject({ index: 1, count: 2 });
    // And to the first a2 (a leaf itself).
    expect(await conversations.chooseBranch(at.userId, at.conversationId, back.messages[3]!.siblings.ids[0]!)).toBe("switched");
    expect(texts(await page(at))).toEqual(["q1", "a1", "q2", "a2"]);
    // The next turn continues there, and its prompt is that branch.
    const resumed = await turn(at, "q4", { kind: "append" }, "a4");
    expect(resumed.history?.map((entry) => entry.content)).toEqual(["q1", "a1", "q2", "a2", "q4"]);
  });

  it("pages the active path newest first by keyset, without skipping or repeating", async () => {
    const at = await newConversation();
    for (let index = 1; index <= 7; index += 1) await turn(at, `q${index}`, { kind: "append" }, `a${index}`);
    const newest = await page(at, 5);
    expect(texts(newest)).toEqual(["a5", "q6", "a6", "q7", "a7"]);
    expect(newest.hasMore).toBe(true);
    // A turn sent between pages does not shift the older pages: the cursor names a message.
    await turn(at, "q8", { kind: "append" }, "a8");
    const older = await page(at, 5, newest.messages[0]!.id);
    expect(texts(older)).toEqual(["q3", "a3", "q4", "a4", "q5"]);
    const oldest = await page(at, 5, older.messages[0]!.id);
    expect(texts(oldest)).toEqual(["q1", "a1", "q2", "a2"]);
    expect(oldest.hasMore).toBe(false);
    expect(await page(at, 5, oldest.messages[0]!.id)).toMatchObject({ messages: [], hasMore: false });
  });

  it("refuses a cursor of another conversation, a foreign conversation, and a branch switch while a reply generates", async () => {
    const at = await newConversation();
    const other = await newConversation();
    const first = await turn(at, "q1", { kind: "append" }, "a1");
    const foreign = await turn(other, "x", { kind: "append" }, "y");
    expect(await conversations.pathPage(at.userId, at.conversationId, { limit: 5, before: foreign.user!.id })).toBe("before-unknown");
    expect(await conversations.pathPage(other.userId, at.conversationId, { limit: 5, before: undefined })).toBeUndefined();
    expect(await conversations.chooseBranch(other.userId, at.conversationId, first.user!.id)).toBe("conversation-missing");
    expect(await conversations.chooseBranch(at.userId, at.conversationId, foreign.user!.id)).toBe("message-missing");

    const generating = await messages.acceptTurn({
      conversationId: at.conversationId, userId: at.userId, userContent: "q1 again", taskId: `task_branch_${kind}_live`, requestedModel: undefined,
      models: { defaultModel: "m", allowed: ["m"] }, activeLimit: 5, placement: { kind: "edit", messageId: first.user!.id },
    });
    if (generating.kind !== "accepted") throw new Error(generating.kind);
    expect(await conversations.chooseBranch(at.userId, at.conversationId, first.user!.id)).toBe("generating");
    const current = await page(at);
    expect(current.activeGeneration).toEqual({ taskId: `task_branch_${kind}_live`, messageId: generating.assistant.id });
    expect(current.messages.at(-1)?.id).toBe(generating.assistant.id);
    // One reply at a time on any branch: a regenerate of the other version is refused by the index.
    await expect(messages.acceptTurn({
      conversationId: at.conversationId, userId: at.userId, userContent: undefined, taskId: `task_branch_${kind}_second`, requestedModel: undefined,
      models: { defaultModel: "m", allowed: ["m"] }, activeLimit: 5, placement: { kind: "regenerate", messageId: first.assistant.id },
    })).rejects.toThrow();
  });

  it("refuses to edit a reply or a message of another conversation", async () => {
    const at = await newConversation();
    const other = await newConversation();
    const first = await turn(at, "q1", { kind: "append" }, "a1");
    const foreign = await turn(other, "x", { kind: "append" }, "y");
    const attempt = (placement: TurnPlacement) => messages.acceptTurn({
      conversationId: at.conversationId, userId: at.userId, userContent: "edit", taskId: `task_branch_${kind}_${++taskCounter}`, requestedModel: undefined,
      models: { defaultModel: "m", allowed: ["m"] }, activeLimit: 5, placement,
    });
    expect(await attempt({ kind: "edit", messageId: first.assistant.id })).toEqual({ kind: "not-a-user-message" });
    expect(await attempt({ kind: "edit", messageId: foreign.user!.id })).toEqual({ kind: "message-missing" });
    expect(await attempt({ kind: "regenerate", messageId: foreign.assistant.id })).toEqual({ kind: "message-missing" });
    expect(texts(await page(at))).toEqual(["q1", "a1"]);
  });

  it("keeps a /v1 call's history on one branch under its turn", async () => {
    const at = await newConversation();
    await insertHistory(database.db, { ...at, turns: [{ role: "user", content: "h1" }, { role: "assistant", content: "h2" }, { role: "user", content: "h3" }] });
    const answered = await turn(at, "now", { kind: "append" }, "reply");
    expect(answered.history?.map((entry) => entry.content)).toEqual(["h1", "h2", "h3", "now"]);
    expect((await conversations.activePath(at.conversationId)).map((row) => row.content)).toEqual(["h1", "h2", "h3", "now", "reply"]);
  });

  it("migration 0005 turns a conversation stored before branches into one branch ending at its newest message", async () => {
    const at = await newConversation();
    for (let index = 1; index <= 3; index += 1) await turn(at, `q${index}`, { kind: "append" }, `a${index}`);
    // As stored before 0005: no parents, no leaf.
    await selectRows(database.db, sql`update messages set parent_id = null where conversation_id = ${at.conversationId}`);
    await selectRows(database.db, sql`update conversations set active_leaf_id = null where id = ${at.conversationId}`);
    const migration = readFileSync(fileURLToPath(new URL("./migrations/0005_branches.sql", import.meta.url)), "utf8");
    for (const statement of migration.split("--> statement-breakpoint").filter((text) => /SET "(parent_id|active_leaf_id)"/.test(text))) {
      await selectRows(database.db, sql.raw(statement));
    }
    const migrated = await page(at);
    expect(texts(migrated)).toEqual(["q1", "a1", "q2", "a2", "q3", "a3"]);
    expect(migrated.messages.every((message) => message.siblings.count === 1)).toBe(true);
  });

  it("deletes a branched conversation with its whole tree", async () => {
    const at = await newConversation();
    const first = await turn(at, "q1", { kind: "append" }, "a1");
    await turn(at, "q1b", { kind: "edit", messageId: first.user!.id }, "a1b");
    expect(await conversations.delete(at.userId, at.conversationId)).toBe(true);
    expect(await messages.listForConversation(at.conversationId)).toEqual([]);
  });
});

describe("the messages page cursor", () => {
  it("round-trips a message id and refuses anything else", () => {
    const id = "0190f1f2-1111-4222-8333-444455556666";
    expect(decodePathCursor(encodePathCursor(id))).toBe(id);
    for (const bad of ["", "abc", Buffer.from(JSON.stringify(["before", "nope"])).toString("base64url"), Buffer.from(JSON.stringify(["2024-01-01", id])).toString("base64url")]) {
      expect(decodePathCursor(bad)).toBeUndefined();
    }
  });
});
