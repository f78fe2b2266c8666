/**
 * Conformance suite for PROTOCOL.md, driven as a client would: real HTTP, an
 * SSE parser that follows the WHATWG rules, nothing but what the wire shows.
 * The server side is reached only through `ConformanceTarget`, so a second
 * implementation can run the same assertions by providing its own target.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { EndOutcome } from "../../src/streaming/events.ts";
import { createStreamHub } from "../../src/streaming/stream-hub.ts";
import { createStreamLog } from "../../src/streaming/stream-log.ts";
import { getJson, openSse, type SseConnection } from "./helpers/http-sse-client.ts";
import { interpret } from "./helpers/memory-viewer.ts";
import { startSseTestServer } from "./helpers/sse-test-server.ts";
import type { ParsedSseEvent } from "./helpers/sse-parser.ts";

interface ConformanceTarget {
  baseUrl: string;
  authHeaders: Record<string, string>;
  queryToken(taskId: string): string;
  retryRangeMs: [number, number];
  /** A task the server knows, queued: no event yet. */
  createTask(): string;
  begin(taskId: string, model?: string): Promise<void>;
  text(taskId: string, ...deltas: string[]): Promise<void>;
  end(taskId: string, outcome: EndOutcome): Promise<void>;
  /** A new attempt of the generation (a retry after a failure). */
  retry(taskId: string): Promise<void>;
  /** The server loses the log (Redis restarted without persistence). */
  loseLog(taskId: string): Promise<void>;
  /** The log of a finished task expires. */
  expireLog(taskId: string): Promise<void>;
}

let target: ConformanceTarget;
let cleanup: () => Promise<void>;

const heartbeatMs = 150;

beforeAll(async () => {
  ({ target, cleanup } = await buildOwnTarget());
});
afterAll(async () => await cleanup());

async function buildOwnTarget(): Promise<{ target: ConformanceTarget; cleanup: () => Promise<void> }> {
  const redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
  const subscriber = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
  const log = createStreamLog({ redis, keyPrefix: `test:conformance:${randomBytes(4).toString("hex")}:` });
  const hub = createStreamHub({ log, subscriber, stallTimeoutMs: 500 });
  const server = await startSseTestServer(hub, { heartbeatMs, retryMs: 2_000, retryJitterMs: 1_000 });
  const attempts = new Map<string, number>();
  const attemptOf = (taskId: string): number => attempts.get(taskId) ?? 0;
  return {
    target: {
      baseUrl: server.baseUrl,
      authHeaders: { Authorization: `Bearer ${server.token}` },
      queryToken: (taskId) => `${server.token}:${taskId}`,
      retryRangeMs: [2_000, 3_000],
      createTask() {
        const taskId = `task${randomBytes(5).toString("hex")}`;
        server.tasks.set(taskId, "running");
        return taskId;
      },
      async begin(taskId, model) {
        const started = await log.beginAttempt(taskId, model === undefined ? {} : { model });
        attempts.set(taskId, started.attempt);
      },
      async text(taskId, ...deltas) {
        for (const delta of deltas) await log.append(taskId, attemptOf(taskId), [{ type: "text-delta", delta }]);
      },
      async end(taskId, outcome) {
        await log.end(taskId, attemptOf(taskId), outcome);
        server.tasks.set(taskId, "finished");
      },
      async retry(taskId) {
        const started = await log.beginAttempt(taskId);
        attempts.set(taskId, started.attempt);
      },
      async loseLog(taskId) {
        await redis.del(log.keys(taskId).log, log.keys(taskId).meta);
      },
      async expireLog(taskId) {
        await redis.del(log.keys(taskId).log, log.keys(taskId).meta);
      },
    },
    cleanup: async () => {
      await hub.close();
      await server.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

const streamUrl = (taskId: string, query = ""): string => `${target.baseUrl}/api/stream/${taskId}${query}`;
const connect = async (taskId: string, headers: Record<string, string> = {}, query = ""): Promise<SseConnection> =>
  await openSse(streamUrl(taskId, query), { ...target.authHeaders, ...headers });
const dataOf = (event: ParsedSseEvent | undefined): Record<string, unknown> => JSON.parse(event?.data ?? "null") as Record<string, unknown>;

/** Every frame well-formed (PROTOCOL.md 2.2): an id, an event name equal to data.type, one JSON object. */
function expectWellFormed(events: readonly ParsedSseEvent[]): void {
  for (const event of events) {
    expect(event.id).toMatch(/^[A-Za-z0-9-]{1,100}$/);
    expect(dataOf(event).type).toBe(event.event);
  }
}

describe("PROTOCOL.md 2.2: response", () => {
  it("sends the SSE headers and a retry line with jitter first", async () => {
    const taskId = target.createTask();
    await target.begin(taskId, "model-x");
    const connection = await connect(taskId);
    expect(connection.status).toBe(200);
    expect(connection.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(connection.headers["cache-control"]).toBe("no-cache, no-transform");
    expect(connection.headers["x-accel-buffering"]).toBe("no");
    expect(connection.headers.connection).toBe("keep-alive");
    const [start] = await connection.waitForEvents(1);
    expect(connection.raw()).toMatch(/^retry: \d+\n\n/);
    const retry = connection.parser.retries[0] ?? 0;
    expect(retry).toBeGreaterThanOrEqual(target.retryRangeMs[0]);
    expect(retry).toBeLessThanOrEqual(target.retryRangeMs[1]);
    expect(dataOf(start)).toEqual({ type: "start", attempt: 1, model: "model-x" });
    connection.abort();
  });

  it("sends heartbeat comments while nothing happens", async () => {
    const taskId = target.createTask();
    const connection = await connect(taskId);
    await expect.poll(() => connection.parser.comments.length, { timeout: 3_000 }).toBeGreaterThanOrEqual(2);
    expect(connection.parser.comments[0]).toBe("ping");
    expect(connection.parser.events).toHaveLength(0);
    connection.abort();
  });

  it("ends with exactly one end event, then closes the response", async () => {
    const taskId = target.createTask();
    const connection = await connect(taskId);
    await target.begin(taskId);
    await target.text(taskId, "Hello", ", world");
    await target.end(taskId, { status: "completed", messageId: "msg-1" });
    await connection.closed;
    const events = connection.parser.events;
    expectWellFormed(events);
    expect(events.map((event) => event.event)).toEqual(["start", "text-delta", "text-delta", "end"]);
    expect(dataOf(events.at(-1))).toEqual({ type: "end", status: "completed", messageId: "msg-1" });
    expect(interpret(events).text).toBe("Hello, world");
  });

  it("carries the error of a failed generation in its end event", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.end(taskId, { status: "failed", error: { code: "PROVIDER_TIMEOUT", message: "The provider sent nothing for too long." } });
    const connection = await connect(taskId);
    await connection.closed;
    expect(dataOf(connection.parser.events.at(-1))).toEqual({
      type: "end",
      status: "failed",
      error: { code: "PROVIDER_TIMEOUT", message: "The provider sent nothing for too long." },
    });
  });

  it("delivers text with newlines, CR, NUL and SSE field names as data, intact", async () => {
    const hostile = 'a\nb\r\nc\rd\n\ndata: {"type":"end","status":"completed"}\n\nid: x-99\nevent: end\n\0 \u2028 é 🎉 \ud83d';
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.text(taskId, hostile, "tail");
    await target.end(taskId, { status: "completed" });
    const connection = await connect(taskId);
    await connection.closed;
    expectWellFormed(connection.parser.events);
    expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "text-delta", "text-delta", "end"]);
    expect(interpret(connection.parser.events).text).toBe(`${hostile}tail`);
  });
});

describe("PROTOCOL.md 4: cursors and resume", () => {
  it("gives a late joiner everything from the first event, then the live ones, cursors increasing", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.text(taskId, "one ", "two ");
    const connection = await connect(taskId);
    await connection.waitForEvents(3);
    await target.text(taskId, "three");
    await target.end(taskId, { status: "completed" });
    await connection.closed;
    const view = interpret(connection.parser.events);
    expect(view.text).toBe("one two three");
    expect(view.ends).toBe(1);
    const ids = connection.parser.events.map((event) => event.id ?? "");
    expect(new Set(ids).size).toBe(ids.length);
    expect(view.seqs).toEqual([1, 2, 3, 4, 5]);
  });

  it("resumes after the Last-Event-ID header: nothing before it, nothing twice", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.text(taskId, "a", "b");
    const first = await connect(taskId);
    const seen = await first.waitForEvents(2);
    first.abort();
    await target.text(taskId, "c");
    const second = await connect(taskId, { "Last-Event-ID": seen[1]?.id ?? "" });
    await target.end(taskId, { status: "completed" });
    await second.closed;
    expect(second.parser.events.map((event) => (dataOf(event).delta as string | undefined) ?? event.event)).toEqual(["b", "c", "end"]);
    const all = [...seen, ...second.parser.events];
    expect(interpret(all).text).toBe("abc");
  });

  it("resumes after the lastEventId query parameter, and the header wins over it", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.text(taskId, "x", "y", "z");
    await target.end(taskId, { status: "completed" });
    const whole = await connect(taskId);
    await whole.closed;
    const ids = whole.parser.events.map((event) => event.id ?? "");
    const byQuery = await connect(taskId, {}, `?lastEventId=${encodeURIComponent(ids[1] ?? "")}`);
    await byQuery.closed;
    expect(byQuery.parser.events.map((event) => event.id)).toEqual(ids.slice(2));
    const both = await connect(taskId, { "Last-Event-ID": ids[3] ?? "" }, `?lastEventId=${encodeURIComponent(ids[0] ?? "")}`);
    await both.closed;
    expect(both.parser.events.map((event) => event.id)).toEqual(ids.slice(4));
  });

  it("accepts the read token in the query (EventSource)", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.end(taskId, { status: "completed" });
    const connection = await openSse(streamUrl(taskId, `?token=${encodeURIComponent(target.queryToken(taskId))}`));
    await connection.closed;
    expect(connection.status).toBe(200);
    expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "end"]);
  });

  it("replays a completed stream, and answers 204 to the cursor of its end", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.text(taskId, "done");
    await target.end(taskId, { status: "completed" });
    const connection = await connect(taskId);
    await connection.closed;
    expect(interpret(connection.parser.events)).toMatchObject({ text: "done", ends: 1 });
    const endId = connection.parser.events.at(-1)?.id ?? "";
    const again = await getJson(streamUrl(taskId), { ...target.authHeaders, "Last-Event-ID": endId });
    expect(again).toEqual({ status: 204, body: undefined });
  });

  it("gives a client of a lost log an explicit reset, then the new log from its start", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.text(taskId, "old text");
    const before = await connect(taskId);
    const seen = await before.waitForEvents(2);
    before.abort();
    await target.loseLog(taskId);
    await target.begin(taskId);
    await target.text(taskId, "new text");
    const after = await connect(taskId, { "Last-Event-ID": seen[1]?.id ?? "" });
    const events = await after.waitForEvents(3);
    expect(events[0]?.event).toBe("reset");
    expect(dataOf(events[0])).toMatchObject({ type: "reset", reason: "log-replaced" });
    expect(events.slice(1).map((event) => event.event)).toEqual(["start", "text-delta"]);
    expect(interpret([...seen, ...events]).text).toBe("new text");
    // The reset's id is a valid cursor: resuming from it replays the new log from its start, with no second reset.
    after.abort();
    const fromReset = await connect(taskId, { "Last-Event-ID": events[0]?.id ?? "" });
    const replay = await fromReset.waitForEvents(2);
    expect(replay.map((event) => event.event)).toEqual(["start", "text-delta"]);
    fromReset.abort();
  });

  it("treats a cursor past the end of the log like one of another log", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.end(taskId, { status: "completed" });
    const whole = await connect(taskId);
    await whole.closed;
    const endId = whole.parser.events.at(-1)?.id ?? "";
    const bogus = endId.replace(/-\d+$/, "-9999");
    const connection = await connect(taskId, { "Last-Event-ID": bogus });
    await connection.closed;
    expect(connection.parser.events.map((event) => event.event)).toEqual(["reset", "start", "end"]);
  });
});

describe("PROTOCOL.md 4.3: attempts", () => {
  it("marks a new attempt with a reset in the same stream; the client's text is the last attempt's", async () => {
    const taskId = target.createTask();
    const connection = await connect(taskId);
    await target.begin(taskId);
    await target.text(taskId, "broken ans");
    await target.retry(taskId);
    await target.text(taskId, "good answer");
    await target.end(taskId, { status: "completed" });
    await connection.closed;
    const events = connection.parser.events;
    expect(events.map((event) => event.event)).toEqual(["start", "text-delta", "reset", "text-delta", "end"]);
    expect(dataOf(events[2])).toEqual({ type: "reset", attempt: 2, reason: "retry" });
    expect(interpret(events)).toMatchObject({ text: "good answer", ends: 1 });
  });
});

describe("PROTOCOL.md 2.3: status codes", () => {
  it("400 INVALID_CURSOR for a cursor that cannot be one", async () => {
    const taskId = target.createTask();
    for (const headers of [{ "Last-Event-ID": "garbage" }, { "Last-Event-ID": "a-1-2" }]) {
      const response = await getJson(streamUrl(taskId), { ...target.authHeaders, ...headers });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code: "INVALID_CURSOR" } });
      expect(typeof (response.body as { error: { message: unknown } }).error.message).toBe("string");
    }
    expect((await getJson(streamUrl(taskId, "?lastEventId=%00"), target.authHeaders)).status).toBe(400);
  });

  it("401 without a token, 404 for an unknown stream", async () => {
    const taskId = target.createTask();
    expect(await getJson(streamUrl(taskId))).toMatchObject({ status: 401, body: { error: { code: "UNAUTHENTICATED" } } });
    expect(await getJson(streamUrl("nosuchtask"), target.authHeaders)).toMatchObject({ status: 404, body: { error: { code: "STREAM_NOT_FOUND" } } });
  });

  it("410 STREAM_EXPIRED once a finished stream's log has expired", async () => {
    const taskId = target.createTask();
    await target.begin(taskId);
    await target.end(taskId, { status: "completed", messageId: "m" });
    await target.expireLog(taskId);
    expect(await getJson(streamUrl(taskId), target.authHeaders)).toMatchObject({ status: 410, body: { error: { code: "STREAM_EXPIRED" } } });
  });

  it("200 and waits for a queued generation that has not started yet", async () => {
    const taskId = target.createTask();
    const connection = await connect(taskId);
    expect(connection.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await target.begin(taskId);
    await target.end(taskId, { status: "cancelled" });
    await connection.closed;
    expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "end"]);
    expect(dataOf(connection.parser.events[1])).toEqual({ type: "end", status: "cancelled" });
  });
});
