/**
 * Database errors carry the statement's bound parameters: drizzle's
 * DrizzleQueryError puts `query` and `params` in its message and fields,
 * PGlite adds `query`/`params`/`queryOptions` to its DatabaseError, and
 * PostgreSQL's own `message`, `detail` ("Failing row contains (…)", "Key
 * (email)=(…) already exists"), `hint` and `where` quote values. Parameters
 * are message content, system prompts, emails and password hashes, so none of
 * that may reach a log line or a span. What is kept: the SQLSTATE, the
 * severity and the names of the schema objects involved (table, column,
 * constraint, data type, routine), and the statement's verb.
 */

import { causeChain } from "../errors/cause-chain.ts";
import { schemaObjectFields as keptDatabaseFields } from "../storage/database-errors.ts";
/** Fields of other errors in the chain that may quote a statement or its values. */
const droppedFields = new Set(["query", "params", "queryOptions", "detail", "hint", "where", "internalQuery", "position", "internalPosition"]);
const maxDepth = 8;

interface ErrorLike {
  message: string;
  name?: unknown;
  stack?: unknown;
  cause?: unknown;
  [key: string]: unknown;
}

function isErrorLike(value: unknown): value is ErrorLike {
  return typeof value === "object" && value !== null && typeof (value as { message?: unknown }).message === "string";
}

/** The cause chain up to its first link that is not error-shaped. */
function* errorLikeChain(error: unknown): Generator<ErrorLike> {
  for (const link of causeChain(error, maxDepth)) {
    if (!isErrorLike(link)) return;
    yield link;
  }
}

/** pg's and PGlite's DatabaseError: a SQLSTATE and a severity straight from the server. */
function isPostgresError(error: ErrorLike): boolean {
  return typeof error.code === "string" && /^[0-9A-Z]{5}$/.test(error.code) && typeof error.severity === "string";
}

/** drizzle's DrizzleQueryError (and anything else shaped like it): the statement and its parameters. */
function carriesStatement(error: ErrorLike): boolean {
  return "params" in error || "query" in error || error.name === "DrizzleQueryError" || (error.constructor as { name?: unknown } | undefined)?.name === "DrizzleQueryError";
}

function needsRedaction(error: unknown): boolean {
  return [...errorLikeChain(error)].some((link) => isPostgresError(link) || carriesStatement(link));
}

/**
 * The SQLSTATE of the first PostgreSQL error in `error`'s cause chain.
 * @example sqlStateIn(new DrizzleQueryError(sql, params, pgError)) // "23505"
 */
export function sqlStateIn(error: unknown): string | undefined {
  return [...errorLikeChain(error)].find(isPostgresError)?.code as string | undefined;
}

/**
 * `error` unchanged when its cause chain holds no database error; otherwise a
 * copy of the chain (same prototypes, so `instanceof` and the type name stay)
 * with statements, parameters and server texts replaced by a safe message.
 * @example logger.error({ err: redactDatabaseError(error) }, "request failed");
 */
export function redactDatabaseError<T>(error: T): T | Error {
  if (!needsRedaction(error)) return error;
  return redactChain(error as unknown as ErrorLike, 0) as Error;
}

function redactChain(error: ErrorLike, depth: number): ErrorLike {
  const copy = Object.create(Object.getPrototypeOf(error) as object | null) as ErrorLike;
  const postgres = isPostgresError(error);
  const statement = !postgres && carriesStatement(error);
  const message = postgres ? postgresMessage(error) : statement ? statementMessage(error) : error.message;
  for (const key of Object.keys(error)) {
    if (key === "cause" || key === "message" || key === "stack") continue;
    if (postgres ? !(keptDatabaseFields as readonly string[]).includes(key) && key !== "name" : droppedFields.has(key)) continue;
    copy[key] = error[key];
  }
  const name = typeof error.name === "string" ? error.name : "Error";
  Object.defineProperty(copy, "name", { value: name, enumerable: Object.keys(error).includes("name"), writable: true, configurable: true });
  Object.defineProperty(copy, "message", { value: message, enumerable: false, writable: true, configurable: true });
  Object.defineProperty(copy, "stack", { value: redactedStack(error.stack, `${name}: ${message}`), enumerable: false, writable: true, configurable: true });
  if (isErrorLike(error.cause) && depth < maxDepth) {
    Object.defineProperty(copy, "cause", { value: redactChain(error.cause, depth + 1), enumerable: false, writable: true, configurable: true });
  }
  return copy;
}

function postgresMessage(error: ErrorLike): string {
  const objects = (["table", "column", "constraint"] as const)
    .filter((field) => typeof error[field] === "string")
    .map((field) => `${field} ${String(error[field])}`);
  return `PostgreSQL error ${String(error.code)}${objects.length > 0 ? ` (${objects.join(", ")})` : ""}`;
}

/** "Failed query (insert)": the statement's verb says which kind of statement failed, its text and values stay out. */
function statementMessage(error: ErrorLike): string {
  const verb = typeof error.query === "string" ? /^\s*([a-z]+)/i.exec(error.query)?.[1]?.toLowerCase() : undefined;
  return `Failed query${verb === undefined ? "" : ` (${verb})`}`;
}

/** The stack's frames under a new first line: V8 starts a stack with `name: message`, and the message here was unsafe. */
function redactedStack(stack: unknown, header: string): string {
  if (typeof stack !== "string") return header;
  const lines = stack.split("\n");
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line));
  return firstFrame === -1 ? header : [header, ...lines.slice(firstFrame)].join("\n");
}

/** "outer: inner: innermost", as pino joins the messages of a cause chain. */
export function messageWithCauses(error: unknown): string {
  const messages: string[] = [];
  for (const { message } of errorLikeChain(error)) if (message && !messages.includes(message)) messages.push(message);
  return messages.join(": ");
}
