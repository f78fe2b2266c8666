import { DrizzleQueryError } from "drizzle-orm/errors";
import { findInCauseChain } from "../errors/cause-chain.ts";

/** PostgreSQL SQLSTATE of an error from either driver; drizzle wraps driver errors in `cause`. */
export function sqlStateOf(error: unknown): string | undefined {
  return findInCauseChain(error, ({ code }) => (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined));
}

/** The constraint named in a unique violation, when the driver reports it. */
export function violatedConstraint(error: unknown): string | undefined {
  return findInCauseChain(error, ({ constraint }) => (typeof constraint === "string" ? constraint : undefined));
}

export const uniqueViolation = "23505";

/** Fields of a PostgreSQL error (pg and PGlite) that name schema objects, never data: safe to log and to pass on. */
export const schemaObjectFields = ["code", "severity", "schema", "table", "column", "dataType", "constraint", "routine"] as const;

/**
 * A failure below SQL: the pool could not connect in time, the socket broke, or
 * pg's client-side read timeout fired. None of these carry a SQLSTATE, so they
 * are marked by type where they happen (src/storage/database.ts), never by message.
 */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super("PostgreSQL is unavailable", { cause });
    this.name = "DatabaseUnavailableError";
  }
}

/** True for a query drizzle ran that failed without a SQLSTATE, or a pool that could not hand out a connection. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  if (error instanceof DrizzleQueryError) return sqlStateOf(error.cause) === undefined;
  return false;
}

/**
 * SQLSTATE class 22, "data exception": a value PostgreSQL refuses (U+0000 in
 * text, a failed `::uuid` or `::timestamptz` cast, a number out of range). The
 * API's schemas keep such values out; one that still gets through is the
 * request's fault, so the error handler answers 400, never 500.
 */
export function isDataException(error: unknown): boolean {
  return sqlStateOf(error)?.startsWith("22") === true;
}
