// GET /api/conversations/search and the usage totals in GET /api/me, over HTTP against the real
// runtime (PostgreSQL, Redis, the simulated model): what a client sees, another user's data included.
import { beforeAll, describe, expect, it } from "vitest";
import { expectErrorShape, registerUser, waitForFinalReply, type ChatUser, type MessageJson } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

interface SearchJson {
  items: Array<{
    conversation: { id: string; title: string | null };
    message: { id: string; role: string; snippet: string; highlights: Array<{ start: number; end: number }> } | null;
  }>;
  nextCursor: string | null;
}

let alice: ChatUser;
let bob: ChatUser;
let aliceConversation: string;
let aliceReply: MessageJson;

const sluice = useSluice({ label: "search" }, 60_000);
beforeAll(async () => {
  [alice, bob] = await Promise.all([registerUser(sluice.url, "alice"), registerUser(sluice.url, "bob")]);
  aliceConversation = (await alice.createConversation("Cooking")).id;
  const accepted = await alice.send(aliceConversation, "echo:the saffron risotto needs patience");
  aliceReply = await waitForFinalReply(alice, aliceConversation, accepted.taskId);
  const bobConversation = (await bob.createConversation("Saffron prices")).id;
  const bobAccepted = await bob.send(bobConversation, "echo:saffron is expensive");
  await waitForFinalReply(bob, bobConversation, bobAccepted.taskId);
}, 60_000);

const search = (user: ChatUser, query: string) => user.call<SearchJson>("GET", `/api/conversations/search${query}`);

describe("GET /api/conversations/search", () => {
  it("finds the caller's message text with a snippet naming the matching message, never another user's", async () => {
    const found = await search(alice, "?q=saffron");
    expect(found.status, found.text).toBe(200);
    expect(found.body.items).toHaveLength(1);
    const [hit] = found.body.items;
    expect(hit?.conversation.id).toBe(aliceConversation);
    // The echo reply repeats the question's words: the newest matching message is the reply.
    expect(hit?.message?.id).toBe(aliceReply.id);
    expect(hit?.message?.role).toBe("assistant");
    const snippet = hit?.message?.snippet ?? "";
    expect(snippet).toContain("saffron risotto needs patience");
    expect(hit?.message?.highlights.map(({ start, end }) => snippet.slice(start, end).toLowerCase())).toEqual(["saffron"]);

    // Bob's title and text both say saffron; he sees only his own, Alice only hers.
    const bobs = await search(bob, "?q=saffron");
    expect(bobs.body.items.map((item) => item.conversation.title)).toEqual(["Saffron prices"]);
    expect((await search(bob, "?q=risotto")).body).toEqual({ items: [], nextCursor: null });
    expect((await search(alice, "?q=prices")).body).toEqual({ items: [], nextCursor: null });
  });

  it("matches titles too (message null), and follows renames", async () => {
    const renamed = await alice.call("PATCH", `/api/conversations/${aliceConversation}`, { body: { title: "Weeknight dinners" } });
    expect(renamed.status, renamed.text).toBe(200);
    const byTitle = await search(alice, "?q=weeknight");
    expect(byTitle.body.items.map((item) => [item.conversation.title, item.message])).toEqual([["Weeknight dinners", null]]);
    expect((await search(alice, "?q=cooking")).body.items).toEqual([]);
  });

  it("answers a missing, empty, blank, too long or unstorable q with 400 in the error shape", async () => {
    for (const query of ["", "?q=", "?q=%20%20", `?q=${"a".repeat(201)}`, "?q=%00", "?q=a&q=b", "?q=x&limit=0", "?q=x&limit=51", "?q=x&cursor=%2F%2F", "?q=x&other=1"]) {
      const answer = await search(alice, query);
      expect(answer.status, `${query}: ${answer.text}`).toBe(400);
      expectErrorShape(answer);
    }
    const forged = await search(alice, `?q=x&cursor=${Buffer.from("[1,2]").toString("base64url")}`);
    expect(forged.status).toBe(400);
    expectErrorShape(forged, "VALIDATION_FAILED");
    // Only punctuation: a valid request with nothing to look for.
    expect((await search(alice, `?q=${encodeURIComponent("!!! ---")}`)).body).toEqual({ items: [], nextCursor: null });
    // Dozens of dashes negating nothing made websearch_to_tsquery fail ("tsquery stack too small"): a 500, found by the route fuzzer.
    for (const query of ["-".repeat(36), "- ".repeat(36), `${"-".repeat(36)}saffron`]) {
      const answer = await search(alice, `?q=${encodeURIComponent(query)}`);
      expect(answer.status, query).toBe(200);
    }
  });

  it("answers 401 without a session", async () => {
    const answer = await fetch(`${sluice.url}/api/conversations/search?q=saffron`);
    expect(answer.status).toBe(401);
  });
});

describe("GET /api/me usage", () => {
  it("totals the tokens of the user's replies, as each message reports them", async () => {
    const me = await alice.call<{ usage: { inputTokens: number; outputTokens: number; messages: number } }>("GET", "/api/me");
    expect(me.status, me.text).toBe(200);
    expect(aliceReply.usage).not.toBeNull();
    expect(me.body.usage).toEqual({ inputTokens: aliceReply.usage?.inputTokens, outputTokens: aliceReply.usage?.outputTokens, messages: 1 });
    const fresh = await registerUser(sluice.url, "fresh");
    expect((await fresh.call<{ usage: unknown }>("GET", "/api/me")).body.usage).toEqual({ inputTokens: 0, outputTokens: 0, messages: 0 });
  });
});
