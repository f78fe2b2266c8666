import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { loadConfig } from "../config/config.ts";
import { findFreePort } from "../embedded/free-port.ts";
import { startRedisServer } from "../embedded/redis-server.ts";
import { createLogger } from "../logging/create-logger.ts";
import { startRuntime } from "./runtime.ts";

/** Polls `url` until its status equals `status`, or fails after the deadline. Readiness has no event to wait on. */
async function waitForStatus(url: string, status: number, deadlineMs = 20_000): Promise<Response> {
  const deadline = Date.now() + deadlineMs;
  let last: number | undefined;
  while (Date.now() < deadline) {
    const response = await fetch(url);
    last = response.status;
    if (response.status === status) return response;
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} stayed at ${String(last)}, expected ${status}`);
}

describe("the api runtime against real PostgreSQL and Redis", () => {
  it("reports ready, goes 503 with the error shape when Redis stops, and 200 again when it returns", async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-runtime-"));
    const redisPort = await findFreePort();
    const redisOptions = { executable: inject("redisExecutable"), dataDirectory, appendOnly: false, supervise: false, port: redisPort };
    let redis = await startRedisServer(redisOptions);
    const config = loadConfig(
      { DATABASE_URL: await createTestDatabase("runtime"), REDIS_URL: redis.url, PORT: "0", DATA_DIR: dataDirectory, LOG_LEVEL: "silent", REDIS_COMMAND_TIMEOUT_MS: "500" },
      dataDirectory,
    );
    const runtime = await startRuntime("api", config, createLogger({ level: "silent" }), process.env.PATH);
    try {
      const base = runtime.address ?? "";
      const ready = await waitForStatus(`${base}/readyz`, 200);
      expect(await ready.json()).toEqual({ status: "ready", checks: { postgres: "ok", migrations: "ok", redis: "ok" } });

      await redis.stop();
      const down = await waitForStatus(`${base}/readyz`, 503);
      const body = (await down.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("NOT_READY");
      // Public: the status only; which dependency failed, and why, is in the log (health-routes.ts).
      expect(body.error.message).not.toMatch(/redis|ECONNREFUSED|127\.0\.0\.1/i);

      redis = await startRedisServer(redisOptions);
      await waitForStatus(`${base}/readyz`, 200);

      const missing = await fetch(`${base}/api/no/such/route`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: { code: "ROUTE_NOT_FOUND", message: "No route GET /api/no/such/route" } });
    } finally {
      await runtime.stop();
      await redis.stop();
      rmSync(dataDirectory, { recursive: true, force: true });
    }
  });

  it("migrate applies migrations to an empty PostgreSQL database and exits cleanly", async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-migrate-"));
    const config = loadConfig({ DATABASE_URL: await createTestDatabase("migrate"), LOG_LEVEL: "silent", DATA_DIR: dataDirectory }, dataDirectory);
    const runtime = await startRuntime("migrate", config, createLogger({ level: "silent" }), process.env.PATH);
    expect(runtime.address).toBeUndefined();
    await runtime.stop();
    rmSync(dataDirectory, { recursive: true, force: true });
  });
});
