import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createParser } from "eventsource-parser";
import { describe, expect, it } from "vitest";
import { testRedisUrl, uniqueKeyPrefix } from "../../test/helpers/redis.ts";
import { unreachedLimits, weakPasswordHashing } from "../../test/helpers/test-env.ts";
import { loadConfig } from "../config/config.ts";
import { createLogger } from "../logging/create-logger.ts";
import { startRuntime } from "./runtime.ts";

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
  it("generates on embedded PGlite (statements run in the API thread) and /metrics merges both threads", async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-thread-"));
    // No DATABASE_URL: PGlite, which only the API thread can open, so the worker's statements cross the port.
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
