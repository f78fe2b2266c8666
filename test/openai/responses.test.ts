import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerUser, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

// The Responses API through the official `openai` package: background, resume by sequence_number, cancel.

let sluice: InProcessSluice;
let alice: ChatUser;
let aliceClient: OpenAI;
let bobClient: OpenAI;
const model = "sluice-simulated";

async function keyedClient(user: ChatUser): Promise<OpenAI> {
  const created = await user.call<{ key: string }>("POST", "/api/me/api-keys", {});
  expect(created.status, created.text).toBe(201);
  return new OpenAI({ apiKey: created.body.key, baseURL: `${sluice.url}/v1`, maxRetries: 0 });
}

type StreamEvent = OpenAI.Responses.ResponseStreamEvent;
const textOf = (events: readonly StreamEvent[]): string => events.map((event) => (event.type === "response.output_text.delta" ? event.delta : "")).join("");

beforeAll(async () => {
  // Slow enough (about 1 s a reply) that a reader can drop in the middle of one.
  sluice = await startSluice({ label: "responses", env: { SIMULATED_TOKENS_PER_SECOND: "60", SIMULATED_TOKEN_COUNT: "60", COALESCE_WINDOW_MS: "5" } });
  alice = await registerUser(sluice.url, "alice");
  aliceClient = await keyedClient(alice);
  bobClient = await keyedClient(await registerUser(sluice.url, "bob"));
});
afterAll(async () => {
  await sluice.stop();
});

describe("POST /v1/responses", () => {
  it("answers a plain (foreground, non-streamed) request with the stored response", async () => {
    const response = await aliceClient.responses.create({ model, input: "echo:plain answer", instructions: "" });
    expect(response.status).toBe("completed");
    expect(response.id).toMatch(/^resp_task_/);
    expect(response.output_text).toBe("plain answer");
    expect(response.usage?.output_tokens).toBeGreaterThan(0);
    expect((await aliceClient.responses.retrieve(response.id)).output_text).toBe("plain answer");
  });

  it("runs in the background: answers queued at once, then the stored response completes", async () => {
    const queued = await aliceClient.responses.create({ model, input: [{ role: "user", content: "echo:done later" }], background: true });
    expect(queued.status).toBe("queued");
    const done = await vi.waitFor(async () => {
      const current = await aliceClient.responses.retrieve(queued.id);
      expect(current.status, "the background response").toBe("completed");
      return current;
    }, { timeout: 20_000, interval: 20 });
    expect(done.output_text).toBe("done later");
  });

  it("resumes a dropped background stream with starting_after: nothing lost, nothing repeated", async () => {
    const stream = await aliceClient.responses.create({ model, input: "tell me a long story", background: true, stream: true });
    const before: StreamEvent[] = [];
    let id = "";
    for await (const event of stream) {
      before.push(event);
      if (event.type === "response.created") id = event.response.id;
      if (before.filter((seen) => seen.type === "response.output_text.delta").length === 3) break; // drops the connection
    }
    const last = before.at(-1)?.sequence_number ?? -1;
    expect(before.map((event) => event.sequence_number)).toEqual(before.map((_event, index) => index));

    const resumed = await aliceClient.responses.retrieve(id, { stream: true, starting_after: last });
    const after: StreamEvent[] = [];
    for await (const event of resumed) after.push(event);
    expect(after[0]?.sequence_number).toBe(last + 1);
    expect(after.map((event) => event.sequence_number)).toEqual(after.map((_event, index) => last + 1 + index));
    const completed = after.at(-1);
    expect(completed?.type).toBe("response.completed");

    const streamedText = textOf([...before, ...after]);
    expect(streamedText.length).toBeGreaterThan(20);
    const saved = await aliceClient.responses.retrieve(id);
    expect(saved.status).toBe("completed");
    expect(saved.output_text).toBe(streamedText);
    const finalItem = completed?.type === "response.completed" ? completed.response.output[0] : undefined;
    expect(finalItem?.type === "message" ? finalItem.content[0] : undefined).toMatchObject({ type: "output_text", text: streamedText });
  });

  it("cancels: the stream ends with status cancelled and the stored response says so", async () => {
    const stream = await aliceClient.responses.create({ model, input: "another long story", background: true, stream: true });
    const events: StreamEvent[] = [];
    let cancelled = false;
    for await (const event of stream) {
      events.push(event);
      if (event.type === "response.output_text.delta" && !cancelled) {
        cancelled = true;
        const id = events.find((seen) => seen.type === "response.created");
        await aliceClient.responses.cancel(id?.type === "response.created" ? id.response.id : "");
      }
    }
    const end = events.at(-1);
    expect(end?.type).toBe("response.incomplete");
    const id = end?.type === "response.incomplete" ? end.response.id : "";
    expect(end?.type === "response.incomplete" ? end.response.status : undefined).toBe("cancelled");
    const stored = await vi.waitFor(async () => {
      const current = await aliceClient.responses.retrieve(id);
      expect(current.status, "the stored response").toBe("cancelled");
      return current;
    }, { timeout: 10_000, interval: 20 });
    expect(stored.output_text.length).toBeLessThan(300);
  });

  it("a foreground call whose client goes away still completes and is stored", async () => {
    const controller = new AbortController();
    const call = aliceClient.responses.create({ model, input: "abandoned in the foreground" }, { signal: controller.signal });
    const conversationCount = (await alice.call<{ items: unknown[] }>("GET", "/api/conversations?limit=100")).body.items.length;
    const active = await vi.waitFor(async () => {
      const listed = await alice.call<{ items: Array<{ id: string }> }>("GET", "/api/conversations?limit=100");
      expect(listed.body.items.length, "the call's conversation").toBeGreaterThan(conversationCount);
      const newest = await alice.conversation(listed.body.items[0]?.id ?? "");
      expect(newest.activeGeneration, "the call's generation").not.toBeNull();
      return newest.activeGeneration?.taskId;
    }, { timeout: 10_000, interval: 20 });
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    const saved = await vi.waitFor(async () => {
      const current = await aliceClient.responses.retrieve(`resp_${active}`);
      expect(current.status, "the abandoned response").toBe("completed");
      return current;
    }, { timeout: 20_000, interval: 20 });
    expect(saved.output_text.length).toBeGreaterThan(20);
  });

  it("keeps responses to their user: another user's id is NotFoundError on every route", async () => {
    const response = await aliceClient.responses.create({ model, input: "echo:mine", background: true });
    await expect(bobClient.responses.retrieve(response.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(bobClient.responses.retrieve(response.id, { stream: true, starting_after: 0 })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(bobClient.responses.cancel(response.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(aliceClient.responses.retrieve("resp_nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("refuses what it cannot do with BadRequestError", async () => {
    await expect(aliceClient.responses.create({ model, input: "hi", background: true, store: false })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(aliceClient.responses.create({ model, input: "hi", tools: [{ type: "web_search" }] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(aliceClient.responses.create({ model: "gpt-4o", input: "hi" })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(aliceClient.responses.create({ model, input: [{ role: "assistant", content: "last" }] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });
});
