import { beforeAll, describe, expect, it } from "vitest";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, replyOf } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

const sluice = useSluice({ label: "fullpath", env: { SIMULATED_TOKENS_PER_SECOND: "400", SIMULATED_TOKEN_COUNT: "40" } });
beforeAll(async () => {
});

describe("register → conversation → message → SSE → saved message", () => {
  it("saves exactly the streamed text as a completed reply with usage, and titles the conversation from the first message", async () => {
    const user = await registerUser(sluice.url, "full");
    const conversation = await user.createConversation();
    expect(conversation.title).toBeNull();

    const accepted = await user.send(conversation.id, "  Tell me about   durable\nstreams please  ");
    expect(accepted.userMessage?.content).toBe("  Tell me about   durable\nstreams please  ");
    expect(accepted.assistantMessage.status).toMatch(/pending|streaming/);
    expect(accepted.streamUrl).toContain(`/api/stream/${accepted.taskId}?token=`);

    // The streamUrl's read token works without a bearer (what EventSource uses).
    const { readSse } = await import("../support/client/read-sse.ts");
    const stream = await readSse(`${sluice.url}${accepted.streamUrl}`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(stream.events[0]?.event).toBe("start");
    const end = expectOneEndLast(stream);
    expect(end.status).toBe("completed");
    expect(end.messageId).toBe(accepted.assistantMessage.id);
    const streamed = textOf(stream.events);
    expect(streamed.length).toBeGreaterThan(40);
    expect(stream.events.some((event) => event.event === "usage")).toBe(true);

    const saved = await user.conversation(conversation.id);
    const reply = replyOf(saved, accepted.taskId);
    expect(reply.id).toBe(accepted.assistantMessage.id);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(streamed);
    expect(reply.usage?.outputTokens).toBe(40);
    expect(reply.usage?.inputTokens).toBeGreaterThan(0);
    expect(reply.error).toBeNull();
    expect(saved.activeGeneration).toBeNull();
    expect(saved.title).toBe("Tell me about durable streams please");
    expect(saved.messages.map((message) => message.role)).toEqual(["user", "assistant"]);

    // A second message does not retitle; the bearer-authenticated stream gives the same events.
    const second = await user.send(conversation.id, "echo:second answer");
    const secondStream = await user.stream(second.taskId);
    expect(textOf(secondStream.events)).toBe("second answer");
    const after = await user.conversation(conversation.id);
    expect(after.title).toBe("Tell me about durable streams please");
    expect(replyOf(after, second.taskId).content).toBe("second answer");
    expect(after.messages.map((message) => message.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  it("an explicit title is kept, and a long first message is cut to a short title", async () => {
    const user = await registerUser(sluice.url, "title");
    const named = await user.createConversation("My own title");
    await user.stream((await user.send(named.id, "echo:hi")).taskId);
    expect((await user.conversation(named.id)).title).toBe("My own title");

    const untitled = await user.createConversation();
    await user.stream((await user.send(untitled.id, `echo:${"word ".repeat(100)}`)).taskId);
    const title = (await user.conversation(untitled.id)).title ?? "";
    expect(title.length).toBeGreaterThan(0);
    expect(title.length).toBeLessThanOrEqual(80);
    expect(title.startsWith("echo:word word")).toBe(true);
  });

  it("lists conversations newest activity first, and the cursor pages through all of them once", async () => {
    const user = await registerUser(sluice.url, "list");
    const created: string[] = [];
    for (let index = 0; index < 7; index++) created.push((await user.createConversation(`c${index}`)).id);
    // Activity moves a conversation to the front.
    const first = created[0] ?? "";
    await user.stream((await user.send(first, "echo:bump")).taskId);
    const expectedOrder = [first, ...created.slice(1).reverse()];

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "?limit=3" : `?limit=3&cursor=${encodeURIComponent(cursor)}`;
      const page = await user.call<{ items: Array<{ id: string; updatedAt: string }>; nextCursor: string | null }>("GET", `/api/conversations${query}`);
      expect(page.status, page.text).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.items.map((item) => item.id));
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual(expectedOrder);
    expect(pages).toBe(3);

    // Another user's list is separate.
    const other = await registerUser(sluice.url, "list-other");
    const otherList = await other.call<{ items: unknown[]; nextCursor: string | null }>("GET", "/api/conversations");
    expect(otherList.body).toEqual({ items: [], nextCursor: null });

    const bad = await user.call("GET", "/api/conversations?cursor=not-a-cursor");
    expect(bad.status).toBe(400);
  });
});
