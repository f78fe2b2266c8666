import { Writable } from "node:stream";
import Fastify, { type FastifyBaseLogger } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../logging/create-logger.ts";
import { createManualClock, type ManualClock } from "../../time/manual-clock.ts";
import type { App } from "../app-type.ts";
import { registerErrorHandling } from "../errors/error-handler.ts";
import { registerHealthRoutes } from "./health-routes.ts";

async function appWith(probes: Parameters<typeof registerHealthRoutes>[1], clock: ManualClock = createManualClock()): Promise<{ inject: (url: string) => Promise<{ statusCode: number; body: string }>; logs: () => string }> {
  let logs = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  const loggerInstance: FastifyBaseLogger = createLogger({ level: "info", destination });
  const app: App = Fastify({ loggerInstance }).withTypeProvider<ZodTypeProvider>();
  registerErrorHandling(app);
  registerHealthRoutes(app, probes, 200, clock);
  await app.ready();
  return { inject: async (url) => await app.inject({ method: "GET", url }), logs: () => logs };
}

describe("/readyz", () => {
  it("answers a failure with 503 NOT_READY only; the dependency's error text goes to the log", async () => {
    const secretText = "connect ECONNREFUSED db.internal:5432 as sluice_admin";
    const clock = createManualClock();
    const app = await appWith(
      [
        { name: "postgres", check: () => Promise.reject(new Error(secretText)) },
        { name: "redis", check: () => new Promise(() => undefined) },
        { name: "migrations", check: () => Promise.resolve() },
      ],
      clock,
    );
    const pending = app.inject("/readyz");
    // The two probes that answered have released their timers; only the silent one's is left, due at 200 ms.
    await expect.poll(() => clock.pendingTimers()).toBe(1);
    clock.advance(199);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(1);
    const response = await pending;
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toEqual({ error: { code: "NOT_READY", message: "Not ready: a dependency is down or migrations are pending." } });
    expect(response.body).not.toContain("db.internal");
    expect(response.body).not.toMatch(/postgres|redis|no answer/);
    expect(app.logs()).toContain(secretText);
    expect(app.logs()).toMatch(/"check":"redis".*no answer within 200 ms/);
  });

  it("answers 200 when every check passes", async () => {
    const app = await appWith([{ name: "postgres", check: () => Promise.resolve() }]);
    const response = await app.inject("/readyz");
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: "ready", checks: { postgres: "ok" } });
  });
});
