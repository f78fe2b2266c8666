import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { SluiceError } from "../errors/catalog.ts";
import { openDatabase, type Database } from "../storage/database.ts";
import { DatabaseUnavailableError } from "../storage/database-errors.ts";
import { startTracing } from "../tracing/start-tracing.ts";
import { failSpan, startSpan } from "../tracing/with-span.ts";
import { createLogger } from "./create-logger.ts";

// Real failing statements through drizzle on both drivers: what a log line and a span
// carry must name the SQLSTATE and never quote a bound parameter.
const canary = "CANARY-secret-prompt-4f1e@example.com";

/** Runs three statements that fail with the canary as a parameter: in the message (22P02), in the detail (23505), in a RAISE. */
async function failures(database: Database): Promise<Array<{ error: unknown; sqlState: string }>> {
  const { db } = database;
  await db.execute(sql.raw("create table if not exists canary_probe (email text unique)"));
  await db.execute(sql`insert into canary_probe (email) values (${canary}) on conflict do nothing`);
  const caught: Array<{ error: unknown; sqlState: string }> = [];
  const attempt = async (sqlState: string, run: () => Promise<unknown>): Promise<void> => {
    try {
      await run();
    } catch (error) {
      caught.push({ error, sqlState });
      return;
    }
    throw new Error(`expected ${sqlState}`);
  };
  await attempt("22P02", () => db.execute(sql`select ${canary}::int`));
  await attempt("23505", () => db.execute(sql`insert into canary_probe (email) values (${canary})`));
  await attempt("SLU01", () =>
    db.execute(sql`do $$ begin raise exception 'refused: %', ${sql.raw(`'${canary}'`)} using errcode = 'SLU01', detail = ${sql.raw(`'row (${canary})'`)}; end $$`),
  );
  return caught;
}

function captureLogs(): { logger: ReturnType<typeof createLogger>; text(): string } {
  let text = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: createLogger({ level: "info", destination }), text: () => text };
}

describe.each(["postgres", "pglite"] as const)("a failed statement on %s", (kind) => {
  let database: Database;
  let directory: string;
  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), "sluice-redact-"));
    database = await openDatabase({
      url: kind === "postgres" ? await createTestDatabase("redact") : undefined,
      dataDirectory: directory,
      poolSize: 2,
      statementTimeoutMs: 5_000,
    });
  });
  afterAll(async () => {
    await database.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("is logged with its SQLSTATE and without its parameters, also wrapped as a cause", async () => {
    const caught = await failures(database);
    expect(caught).toHaveLength(3);
    // The raw errors do carry the canary: this is what used to be logged.
    expect(caught.some(({ error }) => JSON.stringify({ message: (error as Error).message, ...(error as object) }).includes(canary))).toBe(true);
    const logs = captureLogs();
    for (const { error, sqlState } of caught) {
      logs.logger.error({ err: error }, "request failed");
      logs.logger.error({ err: new SluiceError("INTERNAL", undefined, { cause: error }) }, "wrapped");
      logs.logger.warn({ err: new DatabaseUnavailableError(error), sqlState }, "unavailable");
      logs.logger.warn({ error }, "as error");
    }
    const text = logs.text();
    expect(text).not.toContain(canary);
    expect(text).not.toContain("canary_probe (email) values");
    for (const { sqlState } of caught) expect(text).toContain(`PostgreSQL error ${sqlState}`);
    const first = JSON.parse(text.split("\n")[0] ?? "{}") as { err: { type: string; code?: string; message: string; stack: string } };
    expect(first.err.type).toBe("DrizzleQueryError");
    expect(first.err.message).toMatch(/^Failed query \(select\): PostgreSQL error 22P02/);
    expect(first.err.stack).toMatch(/^Error: Failed query \(select\)\n\s+at /);
  });

  it("is recorded on a span with its SQLSTATE and without its parameters", async () => {
    const caught = await failures(database);
    const exporter = new InMemorySpanExporter();
    const tracing = await startTracing({ tracesEndpoint: undefined, serviceName: "redact-test", sampleRatio: 1 }, { exporter });
    try {
      for (const { error } of caught) {
        const span = startSpan("final save");
        failSpan(span, new SluiceError("INTERNAL", undefined, { cause: error }));
        span.end();
      }
      const spans = exporter.getFinishedSpans();
      expect(spans).toHaveLength(3);
      const recorded = JSON.stringify(spans.map((span) => ({ events: span.events, attributes: span.attributes, status: span.status })));
      expect(recorded).not.toContain(canary);
      expect(spans.map((span) => span.attributes["db.response.status_code"])).toEqual(caught.map(({ sqlState }) => sqlState));
      expect(String(spans[0]?.events[0]?.attributes?.["exception.message"])).toContain("PostgreSQL error 22P02");
    } finally {
      await tracing.shutdown();
    }
  });
});
