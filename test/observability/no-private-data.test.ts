import { Redis } from "ioredis";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { ApiError, registerUser } from "../support/client/chat-api.ts";
import { testRedisUrl } from "../support/servers/redis.ts";
import { sluiceEnvironment } from "../support/sluice/environment.ts";
import { startSluiceProcess, whenOutput } from "../support/sluice/sluice-process.ts";

// A failed SQL statement through the real API and worker processes (RELIABILITY.md, "Abuse",
// private data): the statement's parameters (here a canary in message content and in the
// model's reply) must reach neither a log line nor an exported span; the SQLSTATE must.

/** An OTLP/HTTP receiver that keeps every export body as text, so a test can search all of it. */
async function startRawOtlpReceiver(): Promise<{ endpoint: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      bodies.push((request.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8"));
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, bodies, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe("a failed SQL statement", () => {
  it("is logged and traced by its SQLSTATE, never with its parameters, in the API and in the worker", async () => {
    const apiCanary = `CANARY-API-${randomBytes(6).toString("hex")}`;
    const workerCanary = `CANARY-WORKER-${randomBytes(6).toString("hex")}`;
    const receiver = await startRawOtlpReceiver();
    const shared = await sluiceEnvironment("private");
    const databaseUrl = shared.DATABASE_URL;
    const env = {
      ...shared,
      SIMULATED_TOKENS_PER_SECOND: "1000",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      FINAL_SAVE_RETRY_MS: "1000",
      SHUTDOWN_GRACE_MS: "1000",
    };
    const api = await startSluiceProcess({ role: "api", env });
    const worker = await startSluiceProcess({ role: "worker", env });
    try {
      // The API has applied the migrations. PostgreSQL refuses the canaries with a custom SQLSTATE and
      // quotes them back in its message and detail, as a CHECK's "Failing row contains (…)" does.
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        await admin.query(`
          create function refuse_canary() returns trigger language plpgsql as $$
          begin
            if new.content like '%CANARY-API-%' or (tg_op = 'UPDATE' and new.content like '%CANARY-WORKER-%') then
              raise exception 'refused: %', new.content using errcode = 'SLU01', detail = 'row (' || new.content || ')', hint = new.content;
            end if;
            return new;
          end $$;
          create trigger refuse_canary before insert or update on messages for each row execute function refuse_canary();
        `);
      } finally {
        await admin.end();
      }
      const session = await registerUser(api.url ?? "", "private");
      const conversationId = (await session.createConversation()).id;

      // API path: the INSERT of the user's message fails.
      const refused = await session.send(conversationId, `hello ${apiCanary}`).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).status).toBe(500);
      expect((refused as ApiError).body).not.toContain(apiCanary);
      await whenOutput([api], () => /"msg":"request failed"/.test(api.output()) || undefined, "the API to log the failed request");

      // Worker path: the simulated model echoes the canary and the final save's UPDATE fails.
      await session.send(conversationId, `echo:${workerCanary}`);
      await whenOutput([worker], () => /"msg":"generation job failed"/.test(worker.output()) || undefined, "the worker to log the failed job");
      // BullMQ keeps a failed job's error message and stack in Redis (for a day): they must not carry it either.
      const redis = new Redis(testRedisUrl());
      try {
        const failedJobKeys = (await redis.keys(`${env.REDIS_KEY_PREFIX}{queue}:generations:task_*`)).filter((key) => !key.includes(":", key.indexOf("task_")));
        const failures = await Promise.all(failedJobKeys.map(async (key) => await redis.hmget(key, "failedReason", "stacktrace")));
        expect(failures.flat().some((field) => field !== null)).toBe(true);
        expect(JSON.stringify(failures)).not.toContain(workerCanary);
      } finally {
        redis.disconnect();
      }
      // The user's own text is stored and shown to them: only logs and spans must not carry it.
      expect(JSON.stringify(await session.conversation(conversationId))).toContain(workerCanary);
    } finally {
      // Shutdown flushes the batch span processors: after this the receiver has every span.
      await Promise.all([api.stop(), worker.stop()]);
      await receiver.close();
    }
    for (const [name, output] of [["api", api.output()], ["worker", worker.output()]] as const) {
      expect(output, name).not.toContain(apiCanary);
      expect(output, name).not.toContain(workerCanary);
      expect(output, name).toContain("SLU01");
    }
    const spans = receiver.bodies.join("\n");
    expect(spans).not.toContain(apiCanary);
    expect(spans).not.toContain(workerCanary);
    // Both processes' failed spans name the SQLSTATE: the API's request span and the worker's final save.
    expect(spans).toMatch(/"db\.response\.status_code","value":\{"stringValue":"SLU01"\}/);
    expect(spans).toContain("sluice-worker");
    expect(receiver.bodies.filter((body) => body.includes("SLU01")).length).toBeGreaterThanOrEqual(2);
  });
});
