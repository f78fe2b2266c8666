import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase, type TestDatabase } from "../../test/support/servers/open-test-database.ts";
import { createConversationsService, type ConversationsService } from "../chat/conversations-service.ts";
import { SluiceError } from "../errors/catalog.ts";
import { createConversationsRepository } from "./conversations-repository.ts";
import { selectRows, type Database } from "./database.ts";
import { createMessagesRepository } from "./messages-repository.ts";
import { conversations, messages, users } from "./schema.ts";
import { sql } from "drizzle-orm";

// The same search on both drivers: PGlite is what `npm start` uses without DATABASE_URL.
describe.each(["postgres", "pglite"] as const)("conversation search on %s", (kind) => {
  let database: Database;
  let service: ConversationsService;
  let opened: TestDatabase | undefined;

  beforeAll(async () => {
    opened = await openTestDatabase(kind, "search");
    database = opened.database;
    service = createConversationsService({
      conversations: createConversationsRepository(database.db),
      messages: createMessagesRepository(database.db),
      streamUrl: () => "",
      discardStreams: () => Promise.resolve(),
    });
  }, 60_000);
  afterAll(async () => {
    await opened?.close();
  });

  async function userWith(label: string, chats: Array<{ title: string | null; texts: string[] }>) {
    const [user] = await database.db.insert(users).values({ email: `${label}-${kind}@example.test`, passwordHash: "x" }).returning();
    if (!user) throw new Error("no user");
    const ids: Array<{ conversationId: string; messageIds: string[] }> = [];
    for (const [index, chat] of chats.entries()) {
      // Distinct activity times, oldest first, so "newest activity first" is checkable.
      const at = new Date(Date.UTC(2026, 0, 1, 0, index));
      const [conversation] = await database.db.insert(conversations).values({ userId: user.id, title: chat.title, createdAt: at, updatedAt: at }).returning();
      if (!conversation) throw new Error("no conversation");
      const messageIds: string[] = [];
      for (const [position, text] of chat.texts.entries()) {
        const assistant = position % 2 === 1;
        const [message] = await database.db
          .insert(messages)
          .values({
            conversationId: conversation.id,
            userId: user.id,
            role: assistant ? "assistant" : "user",
            content: text,
            status: "completed",
            createdAt: new Date(at.getTime() + position * 1000),
            ...(assistant ? { inputTokens: 10 + position, outputTokens: 100 } : {}),
          })
          .returning();
        if (!message) throw new Error("no message");
        messageIds.push(message.id);
      }
      ids.push({ conversationId: conversation.id, messageIds });
    }
    return { user, ids };
  }

  it("finds titles and message text, names the newest matching message with a highlighted snippet, and only the caller's", async () => {
    const alice = await userWith("alice", [
      { title: "Gardening plans", texts: ["What should I plant in spring?", "Tomatoes and basil grow well together."] },
      { title: "Trip to Lisbon", texts: ["Where do I eat pastel de nata?", "Try the bakery in Belém; the basil lemonade nearby is good too.", "And basil again later."] },
      { title: "Unrelated", texts: ["Nothing to see here", "Indeed."] },
    ]);
    const bob = await userWith("bob", [{ title: "Basil secrets", texts: ["basil basil basil", "Bob's basil."] }]);

    const page = await service.search(alice.user.id, { query: "basil", limit: 10, cursor: undefined });
    expect(page.nextCursor).toBeNull();
    expect(page.items.map((item) => item.conversation.title)).toEqual(["Trip to Lisbon", "Gardening plans"]);
    const [lisbon, garden] = page.items;
    // The newest of the matching messages in that conversation.
    expect(lisbon?.message?.id).toBe(alice.ids[1]?.messageIds[2]);
    expect(garden?.message?.id).toBe(alice.ids[0]?.messageIds[1]);
    expect(garden?.message?.role).toBe("assistant");
    const snippet = garden?.message?.snippet ?? "";
    expect(snippet).toContain("Tomatoes and basil grow well together");
    expect(garden?.message?.highlights.map(({ start, end }) => snippet.slice(start, end))).toEqual(["basil"]);
    expect(snippet).not.toMatch(/[\uE000\uE001]/);

    // Bob's own search never sees Alice's, and the reverse.
    const bobs = await service.search(bob.user.id, { query: "basil", limit: 10, cursor: undefined });
    expect(bobs.items.map((item) => item.conversation.id)).toEqual([bob.ids[0]?.conversationId]);

    // A title-only match has no message; case and web-search syntax work.
    const titled = await service.search(alice.user.id, { query: "LISBON", limit: 10, cursor: undefined });
    expect(titled.items).toHaveLength(1);
    expect(titled.items[0]?.message).toBeNull();
    expect((await service.search(alice.user.id, { query: '"pastel de nata"', limit: 10, cursor: undefined })).items).toHaveLength(1);
    expect((await service.search(alice.user.id, { query: "basil -lisbon -bakery -again", limit: 10, cursor: undefined })).items.map((item) => item.conversation.title)).toEqual(["Gardening plans"]);
    // Punctuation only: no words to look for, so nothing matches (and nothing fails).
    expect((await service.search(alice.user.id, { query: "!!! --- ()", limit: 10, cursor: undefined })).items).toEqual([]);
  });

  it("pages with the listing's keyset cursor: no repeats, no gaps; a forged cursor is a validation error", async () => {
    const carol = await userWith(
      "carol",
      Array.from({ length: 5 }, (_, index) => ({ title: `Chat ${index}`, texts: [`needle number ${index}`] })),
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages += 1) {
      const page = await service.search(carol.user.id, { query: "needle", limit: 2, cursor });
      seen.push(...page.items.map((item) => item.conversation.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(carol.ids.map((entry) => entry.conversationId).reverse());
    await expect(service.search(carol.user.id, { query: "needle", limit: 2, cursor: "bm90LWEtY3Vyc29y" })).rejects.toBeInstanceOf(SluiceError);
  });

  it("indexes message text for search (GIN), and totals a user's token usage", async () => {
    const dave = await userWith("dave", [{ title: null, texts: ["q", "a", "q2", "a2"] }]);
    expect(await service.usageTotals(dave.user.id)).toEqual({ inputTokens: 11 + 13, outputTokens: 200, messages: 2 });
    const fresh = await userWith("erin", []);
    expect(await service.usageTotals(fresh.user.id)).toEqual({ inputTokens: 0, outputTokens: 0, messages: 0 });
    const indexes = await selectRows<{ indexdef: string }>(database.db, sql`select indexdef from pg_indexes where indexname = 'messages_content_search_idx'`);
    expect(indexes[0]?.indexdef).toContain("gin (to_tsvector('simple'::regconfig, content))");
  });
});
