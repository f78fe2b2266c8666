import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { call, registerUser, type ChatUser, type ConversationJson } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// The official `openai` package against an in-process Sluice (README "Use Sluice from the OpenAI SDK").

let alice: ChatUser;
let bob: ChatUser;
let aliceKey: string;
let bobKey: string;
const model = "sluice-simulated";

const client = (apiKey: string, options: { maxRetries?: number } = {}): OpenAI => new OpenAI({ apiKey, baseURL: `${sluice.url}/v1`, maxRetries: options.maxRetries ?? 0 });

async function createKey(user: ChatUser, name?: string): Promise<{ id: string; key: string }> {
  const created = await user.call<{ id: string; key: string }>("POST", "/api/me/api-keys", name === undefined ? {} : { body: { name } });
  expect(created.status, created.text).toBe(201);
  return created.body;
}

async function conversationCount(user: ChatUser): Promise<number> {
  const listed = await user.call<{ items: unknown[] }>("GET", "/api/conversations?limit=100");
  return listed.body.items.length;
}

const sluice = useSluice({ label: "openai" });
beforeAll(async () => {
  alice = await registerUser(sluice.url, "alice");
  bob = await registerUser(sluice.url, "bob");
  aliceKey = (await createKey(alice, "laptop")).key;
  bobKey = (await createKey(bob)).key;
});

describe("API keys", () => {
  it("are shown once, listed without the secret, and revoked at once", async () => {
    const created = await createKey(alice, "ci");
    expect(created.key).toMatch(/^sk-sluice-[A-Za-z0-9_-]{43}$/);
    const listed = await alice.call<{ items: Array<Record<string, unknown>> }>("GET", "/api/me/api-keys");
    expect(listed.status).toBe(200);
    const entry = listed.body.items.find((item) => item.id === created.id);
    expect(entry).toMatchObject({ name: "ci", prefix: created.key.slice(0, 16) });
    expect(listed.text).not.toContain(created.key);
    expect(listed.text).not.toContain(created.key.slice(16));

    expect((await client(created.key).models.list()).data.length).toBeGreaterThan(0);
    const revoked = await alice.call("DELETE", `/api/me/api-keys/${created.id}`);
    expect(revoked.status).toBe(204);
    await expect(client(created.key).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await alice.call("DELETE", `/api/me/api-keys/${created.id}`)).status).toBe(404);
  });

  it("are one user's: another user's key id is 404 like a missing one, and stays valid", async () => {
    const bobs = await bob.call<{ items: Array<{ id: string }> }>("GET", "/api/me/api-keys");
    const bobKeyId = bobs.body.items[0]?.id ?? "";
    const foreign = await alice.call("DELETE", `/api/me/api-keys/${bobKeyId}`);
    const missing = await alice.call("DELETE", "/api/me/api-keys/00000000-0000-4000-8000-000000000000");
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual(missing.body);
    expect((await alice.call("DELETE", "/api/me/api-keys/not-a-uuid")).status).toBe(404);
    expect((await client(bobKey).models.list()).data.length).toBeGreaterThan(0);
    const aliceList = await alice.call("GET", "/api/me/api-keys");
    expect(aliceList.text).not.toContain(bobKeyId);
  });

  it("need a session, refuse extra fields, and a key is not a session (nor a session a key)", async () => {
    expect((await call(sluice.url, "POST", "/api/me/api-keys", {})).status).toBe(401);
    expect((await call(sluice.url, "GET", "/api/me/api-keys", { token: aliceKey })).status).toBe(401);
    expect((await call(sluice.url, "GET", "/api/conversations", { token: aliceKey })).status).toBe(401);
    const extra = await alice.call<{ error: { code: string } }>("POST", "/api/me/api-keys", { body: { name: "x", userId: "someone" } });
    expect(extra.status).toBe(400);
    expect(extra.body.error.code).toBe("VALIDATION_FAILED");
    await expect(client(alice.token).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const wrong = await client("sk-sluice-not-a-real-key").models.list().catch((error: unknown) => error);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((wrong as InstanceType<typeof OpenAI.AuthenticationError>).error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key", param: null });
  });
});

describe("GET /v1/models", () => {
  it("lists the allow-list in OpenAI's list shape", async () => {
    const models = await client(aliceKey).models.list();
    expect(models.data.map((entry) => entry.id)).toEqual([model]);
    expect(models.data[0]).toMatchObject({ object: "model", owned_by: "sluice" });
    expect((await client(aliceKey).models.retrieve(model)).id).toBe(model);
    await expect(client(aliceKey).models.retrieve("gpt-nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("POST /v1/chat/completions", () => {
  it("answers without streaming, and with store: true can be fetched again; otherwise not", async () => {
    const completion = await client(aliceKey).chat.completions.create({ model, messages: [{ role: "user", content: "echo:Hello from Sluice" }], store: true });
    expect(completion.object).toBe("chat.completion");
    expect(completion.id).toMatch(/^chatcmpl-task_/);
    expect(completion.choices[0]?.message).toMatchObject({ role: "assistant", content: "Hello from Sluice" });
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));

    const fetched = await client(aliceKey).chat.completions.retrieve(completion.id);
    expect(fetched.choices[0]?.message.content).toBe("Hello from Sluice");
    expect(fetched.usage).toEqual(completion.usage);

    // Another user's id, an unstored one and a made-up one are the same 404.
    await expect(client(bobKey).chat.completions.retrieve(completion.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const unstored = await client(aliceKey).chat.completions.create({ model, messages: [{ role: "user", content: "echo:not kept" }] });
    await expect(client(aliceKey).chat.completions.retrieve(unstored.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client(aliceKey).chat.completions.retrieve("chatcmpl-nothing")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("streams chat.completion.chunk events from the log, with usage last when asked", async () => {
    const stream = await client(aliceKey).chat.completions.create({
      model,
      messages: [{ role: "user", content: "echo:Streamed, durably, through the log." }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe("Streamed, durably, through the log.");
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
  });

  it("streams without a usage chunk unless asked", async () => {
    const stream = await client(aliceKey).chat.completions.create({ model, messages: [{ role: "user", content: "echo:short" }], stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.choices.length === 1 && chunk.usage === undefined)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe("short");
  });

  it("keeps generating when the client goes away mid-stream", async () => {
    const stream = await client(aliceKey).chat.completions.create({
      model,
      messages: [{ role: "user", content: "a long reply please" }],
      stream: true,
      store: true,
    });
    let id = "";
    for await (const chunk of stream) {
      id = chunk.id;
      if (chunk.choices[0]?.delta.content) break; // leaves the loop: the SDK aborts the request
    }
    const outcome = await vi.waitFor(
      () =>
        client(aliceKey).chat.completions.retrieve(id).then(
          (completion) => ({ completion }),
          (error: unknown) => {
            if (error instanceof OpenAI.ConflictError) throw error; // still generating: asked again
            return { error };
          },
        ),
      { timeout: 20_000, interval: 20 },
    );
    if ("error" in outcome) throw outcome.error;
    const saved = outcome.completion;
    expect(saved.choices[0]?.message.content?.length).toBeGreaterThan(20);
  });

  it("is a Sluice generation: the caller's history and instructions become a conversation of the key's user", async () => {
    const before = await conversationCount(alice);
    const completion = await client(aliceKey).chat.completions.create({
      model,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "first question" },
        { role: "assistant", content: "first answer" },
        { role: "user", content: [{ type: "text", text: "echo:" }, { type: "text", text: "second answer" }] },
      ],
      temperature: 0.2,
      max_tokens: 100,
      user: "end-user-1",
    });
    expect(completion.choices[0]?.message.content).toBe("second answer");
    const listed = await alice.call<{ items: Array<{ id: string }> }>("GET", "/api/conversations?limit=100");
    expect(listed.body.items.length).toBe(before + 1);
    const newest = await alice.conversation(listed.body.items[0]?.id ?? "");
    expect(newest.messages.map((message) => [message.role, message.content])).toEqual([
      ["user", "Be brief.\n\nfirst question"],
      ["assistant", "first answer"],
      ["user", "echo:second answer"],
      ["assistant", "second answer"],
    ]);
    expect(newest.messages.at(-1)?.taskId).toBe(completion.id.slice("chatcmpl-".length));
    expect(await conversationCount(bob)).toBe(0);
  });

  it("answers invalid requests with BadRequestError in OpenAI's shape, and creates nothing", async () => {
    const before = await conversationCount(alice);
    const badModel = await client(aliceKey).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).catch((error: unknown) => error);
    expect(badModel).toBeInstanceOf(OpenAI.BadRequestError);
    expect((badModel as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ type: "invalid_request_error", code: "model_not_found", param: "model" });

    const lastNotUser = await client(aliceKey).chat.completions.create({ model, messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }] }).catch((error: unknown) => error);
    expect(lastNotUser).toBeInstanceOf(OpenAI.BadRequestError);
    expect((lastNotUser as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages");

    for (const body of [
      { model, messages: [] },
      { model, messages: [{ role: "user", content: "hi" }], n: 2 },
      { model, messages: [{ role: "user", content: "hi" }], tools: [] },
      { model, messages: [{ role: "user", content: "hi\u0000" }] },
      { model, messages: [{ role: "tool", content: "x", tool_call_id: "1" }] },
      { messages: [{ role: "user", content: "hi" }] },
    ]) {
      const answer = await call<{ error: Record<string, unknown> }>(sluice.url, "POST", "/v1/chat/completions", { token: aliceKey, body });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(Object.keys(answer.body.error).sort()).toEqual(["code", "message", "param", "type"]);
      expect(answer.body.error.type).toBe("invalid_request_error");
    }
    const notJson = await fetch(`${sluice.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${aliceKey}`, "content-type": "application/json" }, body: "{" });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    expect(await conversationCount(alice)).toBe(before);
  });

  it("answers unknown /v1 routes and missing keys in OpenAI's shape", async () => {
    const unknown = await call<{ error: Record<string, unknown> }>(sluice.url, "GET", "/v1/assistants", { token: aliceKey });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ type: "invalid_request_error", param: null });
    const noKey = await call<{ error: Record<string, unknown> }>(sluice.url, "POST", "/v1/chat/completions", { body: { model, messages: [] } });
    expect(noKey.status).toBe(401);
    expect(noKey.body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
  });
});

describe("/api/docs", () => {
  it("lists the key routes and the /v1 routes", async () => {
    const docs = await call<{ paths: Record<string, unknown> }>(sluice.url, "GET", "/api/docs/json");
    for (const path of ["/api/me/api-keys", "/api/me/api-keys/{id}", "/v1/models", "/v1/chat/completions", "/v1/chat/completions/{id}", "/v1/responses", "/v1/responses/{id}", "/v1/responses/{id}/cancel"]) {
      expect(Object.keys(docs.body.paths), path).toContain(path);
    }
  });
});

describe("limits per key, as per user", () => {
  let limited: InProcessSluice;
  beforeAll(async () => {
    // Replies take about 2 s, so a stream is still open when the next request comes.
    limited = await startSluice({ label: "openai-limits", env: { LIMIT_MESSAGES_PER_MINUTE: "2", LIMIT_OPEN_STREAMS_PER_USER: "1", SIMULATED_TOKENS_PER_SECOND: "40", SIMULATED_TOKEN_COUNT: "80" } });
  });
  afterAll(async () => {
    await limited.stop();
  });

  it("share the user's message rate limit with the REST API and map to RateLimitError with Retry-After", async () => {
    const carol = await registerUser(limited.url, "carol");
    const created = await carol.call<{ key: string }>("POST", "/api/me/api-keys", {});
    const sdk = new OpenAI({ apiKey: created.body.key, baseURL: `${limited.url}/v1`, maxRetries: 0 });
    const conversation = await carol.createConversation();
    await carol.send(conversation.id, "echo:one");
    await sdk.chat.completions.create({ model, messages: [{ role: "user", content: "echo:two" }] });
    const refused = await sdk.chat.completions.create({ model, messages: [{ role: "user", content: "echo:three" }] }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimited = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimited.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect(Number(rateLimited.headers.get("retry-after"))).toBeGreaterThan(0);
    // A refused call leaves no conversation behind.
    const listed = await carol.call<{ items: ConversationJson[] }>("GET", "/api/conversations");
    expect(listed.body.items.length).toBe(2);
  });

  it("share the user's open-stream slots: a second stream while one is read is RateLimitError, and a slot frees when it closes", async () => {
    const dave = await registerUser(limited.url, "dave");
    const created = await dave.call<{ key: string }>("POST", "/api/me/api-keys", {});
    const sdk = new OpenAI({ apiKey: created.body.key, baseURL: `${limited.url}/v1`, maxRetries: 0 });
    const first = await sdk.chat.completions.create({ model, messages: [{ role: "user", content: "a long one" }], stream: true });
    const reading = first[Symbol.asyncIterator]();
    await reading.next();
    const second = await sdk.chat.completions.create({ model, messages: [{ role: "user", content: "echo:two" }], stream: true }).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(OpenAI.RateLimitError);
    expect((second as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ code: "rate_limit_exceeded" });
    // The REST stream of the same user counts against the same slots.
    const conversations = await dave.call<{ items: Array<{ id: string }> }>("GET", "/api/conversations");
    const detail = await dave.conversation(conversations.body.items[0]?.id ?? "");
    const restStream = await dave.call("GET", `/api/stream/${detail.activeGeneration?.taskId ?? ""}`);
    expect(restStream.status).toBe(429);
    await reading.return?.();
    const outcome = await vi.waitFor(
      () =>
        sdk.chat.completions.create({ model, messages: [{ role: "user", content: "echo:three" }] }).then(
          (completion) => ({ completion }),
          (error: unknown) => {
            if (error instanceof OpenAI.RateLimitError) throw error; // the first stream's slot is not released yet: asked again
            return { error };
          },
        ),
      { timeout: 10_000, interval: 20 },
    );
    if ("error" in outcome) throw outcome.error;
    const third = outcome.completion;
    expect(third.choices[0]?.message.content).toBe("three");
  });
});

describe("the SDK's own retries", () => {
  let busy: InProcessSluice;
  beforeAll(async () => {
    // One generation at a time per user, each about 1 s long.
    busy = await startSluice({ label: "openai-retries", env: { LIMIT_GENERATIONS_PER_USER: "1", SIMULATED_TOKENS_PER_SECOND: "40", SIMULATED_TOKEN_COUNT: "40" } });
  });
  afterAll(async () => {
    await busy.stop();
  });

  it("wait out a 429 by its Retry-After and then succeed, creating one generation", async () => {
    const erin = await registerUser(busy.url, "erin");
    const created = await erin.call<{ key: string }>("POST", "/api/me/api-keys", {});
    const statuses: number[] = [];
    const countingFetch: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init);
      statuses.push(answer.status);
      return answer;
    };
    const patient = new OpenAI({ apiKey: created.body.key, baseURL: `${busy.url}/v1`, maxRetries: 2, fetch: countingFetch });
    const running = await patient.chat.completions.create({ model, messages: [{ role: "user", content: "a long one" }], stream: true });
    const reading = running[Symbol.asyncIterator]();
    await reading.next(); // the first generation is running: the next call is refused once
    const { data, response } = await patient.chat.completions.create({ model, messages: [{ role: "user", content: "echo:after the wait" }] }).withResponse();
    expect(data.choices[0]?.message.content).toBe("after the wait");
    expect(response.status).toBe(200);
    expect(statuses).toEqual([200, 429, 200]);
    await reading.return?.();
    const listed = await erin.call<{ items: unknown[] }>("GET", "/api/conversations");
    expect(listed.body.items.length).toBe(2);
  }, 30_000);
});
