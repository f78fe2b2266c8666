import { beforeAll, describe, expect, it } from "vitest";
import { parseCursor, textOf, type SseEvent } from "../support/client/read-sse.ts";
import { expectErrorShape, expectOneEndLast, registerUser, replyOf, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// Slow enough that the first read is cut off mid-stream: 60 words at 80 words/s ≈ 0.75 s.
let user: ChatUser;
const sluice = useSluice({ label: "resume", env: { SIMULATED_TOKENS_PER_SECOND: "80", SIMULATED_TOKEN_COUNT: "60", COALESCE_WINDOW_MS: "0" } });
beforeAll(async () => {
  user = await registerUser(sluice.url, "resume");
});

const ids = (events: readonly SseEvent[]): Array<string | undefined> => events.map((event) => event.id);

async function startReply(): Promise<{ conversationId: string; taskId: string }> {
  const conversation = await user.createConversation();
  const accepted = await user.send(conversation.id, "Explain resumable streams");
  return { conversationId: conversation.id, taskId: accepted.taskId };
}

describe("resuming a stream by cursor", () => {
  for (const via of ["Last-Event-ID header", "lastEventId query"] as const) {
    it(`with the ${via}: the events after the cursor, nothing before, nothing twice`, async () => {
      const { conversationId, taskId } = await startReply();
      const watcher = user.stream(taskId);
      const first = await user.stream(taskId, { stopAfter: (_event, all) => all.filter((event) => event.event === "text-delta").length >= 3 });
      const cursor = first.events.at(-1)?.id ?? "";
      expect(cursor).toMatch(/^[^-]+-\d+$/);

      const resumed =
        via === "Last-Event-ID header"
          ? await user.stream(taskId, { headers: { "last-event-id": cursor } })
          : await user.stream(taskId, { query: `?lastEventId=${encodeURIComponent(cursor)}` });
      expect(resumed.status).toBe(200);
      expect(resumed.events.some((event) => event.event === "start")).toBe(false);
      expectOneEndLast(resumed);

      // The uninterrupted watcher is the reference: the two reads together are exactly its events.
      const whole = await watcher;
      expect([...ids(first.events), ...ids(resumed.events)]).toEqual(ids(whole.events));
      expect(new Set(ids(resumed.events)).size).toBe(resumed.events.length);
      const joined = textOf([...first.events, ...resumed.events]);
      expect(joined).toBe(textOf(whole.events));

      const reply = await waitForFinalReply(user, conversationId, taskId);
      expect(reply.status).toBe("completed");
      expect(reply.content).toBe(joined);
    });
  }

  it("the header wins over the query parameter", async () => {
    const { taskId } = await startReply();
    const whole = await user.stream(taskId);
    const third = whole.events[2]?.id ?? "";
    const resumed = await user.stream(taskId, { headers: { "last-event-id": third }, query: `?lastEventId=${encodeURIComponent(whole.events[0]?.id ?? "")}` });
    expect(ids(resumed.events)).toEqual(ids(whole.events.slice(3)));
  });

  it("a late join after completion replays everything; a cursor at the end gets 204; garbage 400, a foreign cursor a log-replaced reset", async () => {
    const { conversationId, taskId } = await startReply();
    const live = await user.stream(taskId);
    expectOneEndLast(live);
    await waitForFinalReply(user, conversationId, taskId);

    const late = await user.stream(taskId);
    expect(late.status).toBe(200);
    expect(late.events.map((event) => [event.id, event.data])).toEqual(live.events.map((event) => [event.id, event.data]));
    expect(textOf(late.events)).toBe(replyOf(await user.conversation(conversationId), taskId).content);

    const endCursor = live.events.at(-1)?.id ?? "";
    const atEnd = await user.stream(taskId, { headers: { "last-event-id": endCursor } });
    expect(atEnd.status).toBe(204);
    expect(atEnd.events).toEqual([]);

    const beforeEnd = live.events.at(-2)?.id ?? "";
    const lastOnly = await user.stream(taskId, { headers: { "last-event-id": beforeEnd } });
    expect(lastOnly.events.map((event) => event.event)).toEqual(["end"]);

    for (const cursor of ["garbage", "x".repeat(300), "abc-01"]) {
      const refused = await user.stream(taskId, { headers: { "last-event-id": cursor } });
      expect(refused.status, `${cursor}: ${refused.body}`).toBe(400);
      expectErrorShape({ status: refused.status, body: JSON.parse(refused.body) as unknown, text: refused.body, headers: refused.headers }, "INVALID_CURSOR");
    }
    // PROTOCOL.md 4.3: a cursor of another log, or past this one's end, is answered with a
    // `log-replaced` reset and the whole log, never with a silent gap.
    const end = parseCursor(endCursor);
    const incarnation = end?.incarnation ?? "";
    for (const cursor of ["0000-1", `${incarnation}-${(end?.seq ?? 0) + 5}`]) {
      const replaced = await user.stream(taskId, { headers: { "last-event-id": cursor } });
      expect(replaced.status).toBe(200);
      expect(replaced.events[0]?.json).toMatchObject({ type: "reset", reason: "log-replaced" });
      expect(replaced.events[0]?.id).toBe(`${incarnation}-0`);
      expect(ids(replaced.events.slice(1))).toEqual(ids(live.events));
    }
  });
});
