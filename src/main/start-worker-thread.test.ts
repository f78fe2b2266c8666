import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createParser } from "eventsource-parser";
import { Worker, type MessagePort } from "node:worker_threads";
import { describe, expect, it, onTestFinished } from "vitest";
import { testRedisUrl, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import { unreachedLimits, weakPasswordHashing } from "../../test/support/sluice/environment.ts";
import { loadConfig } from "../config/config.ts";
import { createLogger } from "../logging/create-logger.ts";
import { openDatabase } from "../storage/database.ts";
import { createManualClock } from "../time/manual-clock.ts";
import { startRuntime } from "./runtime.ts";
import { startWorkerThread } from "./start-worker-thread.ts";
import type { WorkerThreadData } from "./worker-thread-protocol.ts";

async function postJson(url: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Reads an SSE stream to its `end` event; returns the concatenated text and the end's status. */
async function readToEnd(url: string): Promise<{ text: string; status: unknown }> {
  const response = await fetch(url);
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) throw new Error("no body");
  let text = "";
  let end: { status?: unknown } | undefined;
  const parser = createParser({
    onEvent: (event) => {
      const data = JSON.parse(event.data) as { delta?: string; status?: unknown };
      if (event.event === "text-delta") text += data.delta ?? "";
      if (event.event === "end") end = data;
    },
  });
  while (end === undefined) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(value);
  }
  await reader.cancel();
  return { text, status: end?.status };
}

describe("sluice start with its worker in a thread", () => {
  it("generates on embedded PGlite (its own thread, which both threads reach) and /metrics merges both threads", async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-thread-"));
    // No DATABASE_URL: PGlite on its own thread; the API's and the worker's statements cross a port each.
    const config = loadConfig(
      {
        REDIS_URL: testRedisUrl(),
        REDIS_KEY_PREFIX: uniqueKeyPrefix("thread"),
        PORT: "0",
        DATA_DIR: dataDirectory,
        LOG_LEVEL: "silent",
        ENABLE_WEB_UI: "false",
        LLM_PROVIDER: "simulated",
        SIMULATED_TOKENS_PER_SECOND: "2000",
        SIMULATED_TOKEN_COUNT: "25",
        ...weakPasswordHashing,
        ...unreachedLimits,
      },
      dataDirectory,
    );
    expect(config.worker.startInThread).toBe(true);
    const runtime = await startRuntime("start", config, createLogger({ level: "silent" }), process.env.PATH);
    try {
      const base = runtime.address ?? "";
      const registered = await postJson(`${base}/api/auth/register`, { email: "thread@example.com", password: "correct horse battery staple" });
      const token = String(registered.body.token);
      const conversation = await postJson(`${base}/api/conversations`, {}, token);
      const accepted = await postJson(`${base}/api/conversations/${String(conversation.body.id)}/messages`, { content: "hello" }, token);
      expect(accepted.status).toBe(202);
      const streamed = await readToEnd(new URL(String(accepted.body.streamUrl), base).toString());
      expect(streamed.status).toBe("completed");
      expect(streamed.text.split(/\s+/).filter(Boolean)).toHaveLength(25);

      const detail = (await (await fetch(`${base}/api/conversations/${String(conversation.body.id)}`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
        messages: Array<{ role: string; status: string; content: string }>;
      };
      const reply = detail.messages.find((message) => message.role === "assistant");
      expect(reply).toMatchObject({ status: "completed", content: streamed.text });

      const metrics = await (await fetch(`${base}/metrics`)).text();
      // Counted in the worker thread, served by the API thread.
      expect(metrics).toMatch(/^sluice_generations_total\{status="completed"\} 1$/m);
      // Process metrics come from the API thread alone, so each series appears once.
      expect(metrics.match(/^process_cpu_seconds_total /gm)).toHaveLength(1);
    } finally {
      await runtime.stop();
      rmSync(dataDirectory, { recursive: true, force: true });
    }
  });
});

/**
 * The real worker thread on the test Redis and a real embedded database, started on a manual
 * clock; `threads` holds every thread started, each with its `ready` message. Each thread opens
 * the database on a port of its own, so a restarted thread's sweep shows that it got a new one.
 */
async function startThreadOnManualClock() {
  const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-thread-restart-"));
  const config = loadConfig(
    { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: uniqueKeyPrefix("thread-restart"), DATA_DIR: dataDirectory, LOG_LEVEL: "silent", LLM_PROVIDER: "simulated", ...unreachedLimits },
    dataDirectory,
  );
  const database = await openDatabase({ url: undefined, dataDirectory, poolSize: 1, statementTimeoutMs: 5000 });
  await database.migrate();
  const clock = createManualClock();
  const threads: Array<{ thread: Worker; ready: Promise<void> }> = [];
  const createThread = (workerData: WorkerThreadData, transferList: MessagePort[]): Worker => {
    const thread = new Worker(new URL("./worker-thread.ts", import.meta.url), { workerData, transferList });
    const ready = new Promise<void>((resolve) => thread.on("message", (message: { type?: string } | undefined) => message?.type === "ready" && resolve()));
    threads.push({ thread, ready });
    return thread;
  };
  const started = await startWorkerThread({ config, redisUrl: testRedisUrl(), embeddedDatabasePort: database.portForThread, logger: createLogger({ level: "silent" }), clock, createThread });
  onTestFinished(async () => {
    await started.worker.stop();
    await database.close();
    rmSync(dataDirectory, { recursive: true, force: true });
  });
  return { started, threads, clock };
}

describe("sluice start's worker thread when it dies", () => {
  const noOrphans = { requeued: 0, failed: 0 };

  it("is started again one second later on the runtime's clock, and the API thread reaches the new one", async () => {
    const { started, threads, clock } = await startThreadOnManualClock();
    expect(await started.worker.sweeper.sweep()).toEqual(noOrphans);

    await threads[0]?.thread.terminate(); // dies as a crashed thread does: exit code 1
    await clock.waitForTimers(1);
    expect(() => started.worker.sweeper.sweep()).toThrow("the worker thread is restarting");
    clock.advance(999);
    expect(threads).toHaveLength(1);
    clock.advance(1);
    expect(threads).toHaveLength(2);

    await threads[1]?.ready;
    expect(await started.worker.sweeper.sweep()).toEqual(noOrphans);
  });

  it("is not started again once the worker is stopping", async () => {
    const { started, threads, clock } = await startThreadOnManualClock();
    await threads[0]?.thread.terminate();
    await clock.waitForTimers(1);

    await started.worker.stop();
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(60_000);
    expect(threads).toHaveLength(1);
  });
});
