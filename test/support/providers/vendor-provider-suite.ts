// The behaviour both vendor adapters must show against their fake server, run
// through the real SDK (src/llm/openai-provider.test.ts, anthropic-provider.test.ts).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { countPromptCharacters, type FakeProviderServer, type FakeServerOptions, type RecordedRequest } from "./fake-provider-script.ts";
import type { Clock } from "../../../src/time/clock.ts";
import type { ChatRequest, LlmProvider, ProviderEvent } from "../../../src/llm/llm-provider.ts";
import { createManualClock } from "../../../src/time/manual-clock.ts";
import { ProviderError } from "../../../src/llm/provider-error.ts";

export interface VendorSuiteOptions {
  startServer(options?: FakeServerOptions): Promise<FakeProviderServer>;
  createProvider(options: { apiKey: string; baseUrl: string; idleTimeoutMs: number; clock?: Clock }): LlmProvider;
  /** Vendor-specific checks of what the SDK sent for `conversation`. */
  checkRequest(request: RecordedRequest): void;
  finishReason: string;
}

export const conversation: ChatRequest = {
  model: "fake-model",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Hello there" },
    { role: "assistant", content: "Hi." },
    { role: "user", content: "Tell me more" },
  ],
};

const generousIdleMs = 60_000;

async function collect(stream: AsyncIterable<ProviderEvent>): Promise<{ text: string; events: ProviderEvent[]; error: unknown }> {
  const events: ProviderEvent[] = [];
  let text = "";
  try {
    for await (const event of stream) {
      events.push(event);
      if (event.type === "text-delta") text += event.delta;
    }
    return { text, events, error: undefined };
  } catch (error) {
    return { text, events, error };
  }
}

function providerError(error: unknown): ProviderError {
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

export function describeVendorProvider(name: string, suite: VendorSuiteOptions): void {
  describe(`${name} provider against its fake server`, () => {
    let server: FakeProviderServer;
    let provider: LlmProvider;
    beforeEach(async () => {
      server = await suite.startServer({ slowTokenDelayMs: 5 });
      provider = suite.createProvider({ apiKey: "sk-test-key", baseUrl: server.url, idleTimeoutMs: generousIdleMs });
    });
    afterEach(async () => {
      await server.close();
    });
    const withModel = (model: string): ChatRequest => ({ ...conversation, model });

    it("streams the whole reply, then usage, then exactly one finish", async () => {
      const { text, events, error } = await collect(provider.stream(conversation, new AbortController().signal));
      expect(error).toBeUndefined();
      expect(text).toBe(server.expectedText());
      const request = server.requests[0];
      if (!request) throw new Error("no request recorded");
      expect(events.slice(-2)).toEqual([
        { type: "usage", inputTokens: countPromptCharacters(request.body), outputTokens: 40 },
        { type: "finish", reason: suite.finishReason },
      ]);
      expect(events.filter((event) => event.type === "finish")).toHaveLength(1);
      suite.checkRequest(request);
    });

    it("streams slowly paced tokens intact", async () => {
      const { text, error } = await collect(provider.stream(withModel("fake-slow"), new AbortController().signal));
      expect(error).toBeUndefined();
      expect(text).toBe(server.expectedText());
    });

    it("maps 429 to rate-limited with Retry-After, without retrying inside the SDK", async () => {
      const { error, events } = await collect(provider.stream(withModel("fake-rate-limit"), new AbortController().signal));
      expect(events).toEqual([]);
      expect(providerError(error)).toMatchObject({ kind: "rate-limited", code: "PROVIDER_RATE_LIMITED", retryable: true, retryAfterMs: 7000, providerStatus: 429 });
      expect(server.requests).toHaveLength(1);
    });

    it("maps 500 to a transient server error, without retrying inside the SDK", async () => {
      const { error } = await collect(provider.stream(withModel("fake-server-error"), new AbortController().signal));
      expect(providerError(error)).toMatchObject({ kind: "server", code: "PROVIDER_ERROR", retryable: true, providerStatus: 500 });
      expect(server.requests).toHaveLength(1);
    });

    it.each([
      ["fake-unauthorized", "auth"],
      ["fake-bad-request", "bad-request"],
    ])("maps %s to a permanent %s error", async (model, kind) => {
      const { error } = await collect(provider.stream(withModel(model), new AbortController().signal));
      expect(providerError(error)).toMatchObject({ kind, code: "PROVIDER_ERROR", retryable: false });
    });

    it.each(["fake-cut", "fake-reset"])("reports %s (no finish reason) as truncated, never as a finished reply", async (model) => {
      const { text, events, error } = await collect(provider.stream(withModel(model), new AbortController().signal));
      expect(providerError(error)).toMatchObject({ kind: "truncated", code: "PROVIDER_TRUNCATED", retryable: true });
      expect(text.length).toBeGreaterThan(0);
      expect(server.expectedText().startsWith(text)).toBe(true);
      expect(events.some((event) => event.type === "finish")).toBe(false);
    });

    it("reports malformed stream data as a server error", async () => {
      const { error } = await collect(provider.stream(withModel("fake-malformed"), new AbortController().signal));
      expect(providerError(error)).toMatchObject({ kind: "server", code: "PROVIDER_ERROR" });
    });

    it("carries a ~5 MB reply to completion", async () => {
      const { text, events, error } = await collect(provider.stream(withModel("fake-huge"), new AbortController().signal));
      expect(error).toBeUndefined();
      expect(text.length).toBeGreaterThanOrEqual(5 * 1024 * 1024);
      expect(text === server.expectedHugeText()).toBe(true);
      expect(events.at(-1)).toEqual({ type: "finish", reason: suite.finishReason });
    });

    it("times out a stalled stream after exactly the idle time (manual clock) and closes the connection", async () => {
      const clock = createManualClock();
      const idleProvider = suite.createProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 5000, clock });
      const iterator = idleProvider.stream(withModel("fake-stall"), new AbortController().signal)[Symbol.asyncIterator]();
      // The stall sends three tokens, then nothing.
      for (let index = 0; index < 3; index++) {
        expect((await iterator.next()).value).toMatchObject({ type: "text-delta" });
      }
      const stalled = iterator.next();
      await clock.waitForTimers(1);
      clock.advance(4999);
      expect(clock.pendingTimers()).toBe(1);
      clock.advance(1);
      await expect(stalled).rejects.toMatchObject({ kind: "idle-timeout", code: "PROVIDER_TIMEOUT", retryable: true });
      const request = server.requests[0];
      await request?.closed;
      expect(request?.closedByClient).toBe(true);
    });

    it("times out a stalled stream on the real clock within the configured idle time", async () => {
      const idleProvider = suite.createProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 300 });
      const startedAt = performance.now();
      const { error, text } = await collect(idleProvider.stream(withModel("fake-stall"), new AbortController().signal));
      expect(providerError(error).kind).toBe("idle-timeout");
      expect(text.length).toBeGreaterThan(0);
      // At least the idle time; the upper bound is loose on purpose (a loaded 2-core machine).
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(290);
      await server.requests[0]?.closed;
    });

    it("stops promptly on abort mid-stream, and the server sees the connection close", async () => {
      const controller = new AbortController();
      const stallProvider = suite.createProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: generousIdleMs });
      const iterator = stallProvider.stream(withModel("fake-stall"), controller.signal)[Symbol.asyncIterator]();
      for (let index = 0; index < 3; index++) {
        expect((await iterator.next()).value).toMatchObject({ type: "text-delta" });
      }
      // The server is now silent, so only the abort can end this wait.
      const pending = iterator.next();
      controller.abort();
      await expect(pending).rejects.toMatchObject({ kind: "aborted", retryable: false });
      const request = server.requests[0];
      await request?.closed;
      expect(request?.closedByClient).toBe(true);
    });

    it("releases the request when the consumer stops reading early", async () => {
      for await (const event of provider.stream(withModel("fake-stall"), new AbortController().signal)) {
        expect(event.type).toBe("text-delta");
        break;
      }
      const request = server.requests[0];
      await request?.closed;
      expect(request?.closedByClient).toBe(true);
    });

    it("does not send a request when the signal is already aborted", async () => {
      const controller = new AbortController();
      controller.abort();
      const { error } = await collect(provider.stream(conversation, controller.signal));
      expect(providerError(error).kind).toBe("aborted");
      expect(server.requests).toHaveLength(0);
    });

    it("reports a refused connection as a transient connection error", async () => {
      const closed = await suite.startServer();
      await closed.close();
      const refused = suite.createProvider({ apiKey: "k", baseUrl: closed.url, idleTimeoutMs: generousIdleMs });
      const { error } = await collect(refused.stream(conversation, new AbortController().signal));
      expect(providerError(error)).toMatchObject({ kind: "connection", code: "PROVIDER_ERROR", retryable: true });
    });
  });
}
