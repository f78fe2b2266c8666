import { Writable } from "node:stream";
import Fastify, { type FastifyBaseLogger } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../logging/create-logger.ts";
import type { App } from "../app-type.ts";
import { registerErrorHandling } from "../errors/error-handler.ts";
import { registerHealthRoutes } from "./health-routes.ts";

async function appWith(probes: Parameters<typeof registerHealthRoutes>[1]): Promise<{ inject: (url: string) => Promise<{ statusCode: number; body: string }>; logs: () => string }> {
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
  registerHealthRoutes(app, probes, 200);
  await app.ready();
  return { inject: async (url) => await app.inject({ method: "GET", url }), logs: () => logs };
}

describe("/readyz", () => {
  it("answers a failure with 503 NOT_READY only; the dependency's error text goes to the log", async () => {
    const secretText = "connect ECONNREFUSED db.internal:5432 as sluice_admin";
    const app = await appWith([
      { name: "postgres", check: () => Promise.reject(new Error(secretText)) },
      { name: "redis", check: () => new Promise(() => undefined) },
      { name: "migrations", check: () => Promise.resolve() },
    ]);
    const response = await app.inject("/readyz");
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
