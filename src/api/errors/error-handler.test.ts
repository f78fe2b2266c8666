import { DrizzleQueryError } from "drizzle-orm/errors";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createAllowedMethods } from "./allowed-methods.ts";
import { toSluiceError } from "./error-handler.ts";

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: inject("postgresUrl") });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
});

/** The error real PostgreSQL raises for `sql`, as drizzle hands it on (wrapped in DrizzleQueryError). */
async function postgresError(sql: string, params: unknown[]): Promise<unknown> {
  const error = await client.query(sql, params).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error, sql).toBeInstanceOf(Error);
  return new DrizzleQueryError(sql, params, error as Error);
}

describe("toSluiceError", () => {
  it("answers every PostgreSQL data exception (SQLSTATE class 22) with 400 VALIDATION_FAILED, never 500", async () => {
    for (const [sql, params] of [
      ["select $1::text", ["a\u0000b"]], // 22021 character_not_in_repertoire
      ["select $1::uuid", ["-".repeat(36)]], // 22P02 invalid_text_representation
      ["select $1::timestamptz", ["2026-02-30 00:00:00+00"]], // 22008 datetime_field_overflow
      ["select $1::int", ["99999999999"]], // 22003 numeric_value_out_of_range
    ] as const) {
      const error = toSluiceError(await postgresError(sql, [...params]));
      expect(error.code, sql).toBe("VALIDATION_FAILED");
      expect(error.status).toBe(400);
      expect(error.message).not.toContain("\u0000");
    }
  });

  it("keeps other SQL errors 500 INTERNAL", async () => {
    expect(toSluiceError(await postgresError("select * from no_such_table", [])).code).toBe("INTERNAL");
  });

  it("maps Fastify's router errors onto the catalog", () => {
    expect(toSluiceError(Object.assign(new Error("x"), { code: "FST_ERR_BAD_URL", statusCode: 400 })).code).toBe("VALIDATION_FAILED");
    expect(toSluiceError(Object.assign(new Error("x"), { code: "FST_ERR_MAX_PARAM_LENGTH", statusCode: 414 }))).toMatchObject({ code: "URL_TOO_LONG", status: 414 });
  });
});

describe("allowed methods of a path", () => {
  it("matches parameters by segment, ignores wildcard routes and query strings are the caller's to strip", () => {
    const methods = createAllowedMethods();
    methods.add(["GET", "HEAD"], "/api/conversations/:id");
    methods.add("PATCH", "/api/conversations/:id");
    methods.add("POST", "/api/conversations/:id/messages");
    methods.add(["GET", "HEAD"], "/*");
    expect(methods.of("/api/conversations/abc")).toEqual(["GET", "HEAD", "PATCH"]);
    expect(methods.of("/api/conversations/abc/messages")).toEqual(["POST"]);
    expect(methods.of("/api/conversations/")).toEqual([]);
    expect(methods.of("/anything")).toEqual([]);
    expect(methods.of("/api/conversations/a.b")).toEqual(["GET", "HEAD", "PATCH"]);
  });
});
