import fc from "fast-check";
import { errorCatalog, type ErrorCode } from "../../src/errors/catalog.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { expectNoServerError } from "../support/client/expect-no-server-error.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

/**
 * Random and hostile requests to every route in the OpenAPI document: the API must
 * answer each one with a non-5xx status, and every error with the one error shape,
 * a code from the catalog and no stack trace. Among the inputs (issue 12): U+0000
 * and lone surrogates in every string, broken %-encodings and over-long segments
 * in the path, 36-dash and other malformed cursors, oversized bodies and wrong
 * content types. A normal message still completes afterwards.
 * Seeded (SLUICE_FUZZ_SEED overrides) so a failure reproduces; fast-check prints the
 * seed and the shrunk counterexample.
 */
const seed = Number(process.env.SLUICE_FUZZ_SEED ?? 20_250_901);
// 14 routes: ~850 cases in `npm test` (~30 s on 2 busy cores); `npm run test:chaos` sets
// SLUICE_FUZZ_RUNS=1500, 21,000 cases.
const runsPerRoute = Number(process.env.SLUICE_FUZZ_RUNS ?? 60);
// A case takes ~35 ms over real HTTP; leave room for a loaded machine.
const timeoutPerRouteMs = Math.max(60_000, runsPerRoute * 300);

let sluice: InProcessSluice;
let user: ChatUser;
let conversationId: string;
let taskId: string;
/** The first user message of the fuzzed conversation (the edit route's target). */
let messageId: string;
let logoutToken: string;

beforeAll(async () => {
  // API only: accepted messages stay pending, which is all the routes need; no worker load during fuzzing.
  sluice = await startSluice({ label: "fuzz", topology: { apis: 1, workers: 0 }, env: { LIMIT_GENERATIONS_PER_USER: "1000" } });
  user = await registerUser(sluice.url, "fuzz");
  logoutToken = (await registerUser(sluice.url, "fuzz-logout")).token;
  conversationId = (await user.createConversation("fuzzed")).id;
  const sent = await user.send(conversationId, "hello");
  taskId = sent.taskId;
  messageId = sent.userMessage?.id ?? "";
});
afterAll(async () => {
  await sluice.stop();
});

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** Sends one request and checks the answer; SSE answers are closed at once. */
async function expectHandled(request: FuzzRequest): Promise<void> {
  const controller = new AbortController();
  const response = await fetch(`${sluice.url}${request.path}`, {
    method: request.method,
    headers: request.headers,
    signal: controller.signal,
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const label = `${request.method} ${request.path.slice(0, 200)} ${JSON.stringify(request.headers).slice(0, 200)} body=${JSON.stringify((request.body ?? "").slice(0, 200))}`;
  const text = await expectNoServerError(response, controller, label);
  if (text !== undefined && response.status >= 400) {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    expect(Object.keys(errorCatalog), `${label} → ${text.slice(0, 300)}`).toContain(body.error?.code);
    expect(errorCatalog[body.error?.code as ErrorCode].status, `${label} → ${text.slice(0, 300)}`).toBe(response.status);
    expect(typeof body.error?.message, label).toBe("string");
  }
}

const hostileKeys = ["owner", "ownerId", "userId", "role", "status", "__proto__", "constructor", "prototype", "id", "taskId", "attempt"];
const fieldNames = ["content", "title", "model", "email", "password", "defaultModel", "systemPrompt", ...hostileKeys];

/** Values of every JSON type, including long strings and odd characters. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: "grapheme", maxLength: 50 }),
  fc.constantFrom("", " ", "\u0000", "a\u0000b", "\ud800", "x\udc00y", "\ud83d", "echo:\u0000", "echo:hi", "a@b.co", "x".repeat(40_000), "é".repeat(5_000), "<script>alert(1)</script>", "sluice-simulated"),
  fc.integer(),
  fc.double(),
  fc.constant(null),
);

/** Bodies near the right shape (known and hostile keys) and far from it (any JSON value). */
const jsonBody: fc.Arbitrary<string> = fc.oneof(
  fc.dictionary(fc.constantFrom(...fieldNames), fieldValue, { maxKeys: 5 }).map((value) => JSON.stringify(value)),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.constantFrom(
    '{"__proto__":{"admin":true},"content":"x"}',
    '{"constructor":{"prototype":{"admin":true}},"title":"t"}',
    `${"[".repeat(5_000)}${"]".repeat(5_000)}`,
    `{"content":${'{"a":'.repeat(2_000)}1${"}".repeat(2_000)}}`,
    JSON.stringify({ content: "y".repeat(1_100_000) }),
    JSON.stringify({ email: "big@example.test", password: "p".repeat(2 * 1024 * 1024) }),
  ),
);

/** Text that is not JSON, or JSON the server must refuse to parse. */
const rawBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constantFrom("", "{", "}", "nul", "\ud800", '{"title":"\u0000"}', "{'a':1}", '{"content":"x",}', "\uFEFF{}", '{"a":1}{"b":2}', "\u0000", "undefined", "NaN", '{"content":"\ud800"}'),
);

const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant("application/json"),
  fc.constant(undefined),
  fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/xml", "application/json-patch+json", "*/*", "application/json; charset=latin1"),
);

const pathSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("00000000-0000-0000-0000-000000000000", "..", "%00", "a".repeat(100), "-1", "null", "-".repeat(36), "task_\u0000"),
  fc.uuid(),
  fc.string({ maxLength: 80 }).filter((text) => text.length > 0),
);

/** Segments sent as they are, not %-encoded: broken %-encodings, NUL, over-long. */
const rawPathSegment: fc.Arbitrary<string> = fc.constantFrom("%00", "task_%00", "%", "%ZZ", "%E0%A4%A", "%C0%80", "%ED%A0%80", "a".repeat(101), "b".repeat(5_000), "-".repeat(36));

/** Page cursors the server could never have written, base64url of almost-right JSON included. */
const badCursor: fc.Arbitrary<string> = fc.constantFrom(
  "-".repeat(36),
  Buffer.from(JSON.stringify(["2026-01-01 00:00:00+00", "-".repeat(36)])).toString("base64url"),
  Buffer.from(JSON.stringify(["1", "00000000-0000-0000-0000-000000000000"])).toString("base64url"),
  Buffer.from(JSON.stringify(["2026-02-30 00:00:00+00", "00000000-0000-0000-0000-000000000000"])).toString("base64url"),
  Buffer.from(JSON.stringify(["2026-01-01 00:00:00+00\u0000", "00000000-0000-0000-0000-000000000000"])).toString("base64url"),
);

const queryString: fc.Arbitrary<string> = fc.oneof(
  fc
    .dictionary(
      fc.constantFrom("limit", "cursor", "lastEventId", "token", "q", "__proto__", "x"),
      fc.oneof(fc.string({ maxLength: 300 }), fc.integer().map(String), fc.constantFrom("-1", "0", "101", "1e3", "abc-1", "[]", "\u0000", "\ud800"), badCursor),
      { maxKeys: 3 },
    )
    .map((query) => (Object.keys(query).length === 0 ? "" : `?${new URLSearchParams(query).toString()}`)),
  // As sent, not encoded: broken %-encodings and NUL in query values.
  fc.constantFrom("?cursor=%ZZ", "?cursor=%00", "?limit=%", "?lastEventId=%00", "?token=%ED%A0%80", "?cursor=%E0%A4%A&limit=1"),
);

const printableHeader = fc.stringMatching(/^[\x21-\x7e]{0,300}$/);
/** Accept headers: the routes that start a generation answer its stream when asked (PROTOCOL.md 2.4). */
const acceptHeader = fc.oneof(
  fc.constantFrom("text/event-stream", "text/event-stream;q=0", "application/json, text/event-stream;q=0.5", "TEXT/EVENT-STREAM; q=abc", "*/*", "text/*"),
  printableHeader,
);

interface Route {
  method: string;
  path: (ids: { conversation: string; task: string; message: string }) => string;
  protected: boolean;
  /** The route's own string body fields, for bodies that pass validation but for one hostile value. */
  fields?: Array<keyof typeof validText>;
}

/** A valid value for each string body field. */
const validText = { email: "fuzz-valid@example.test", password: "correct horse battery", title: "a title", name: "a key", content: "echo:hi", model: "sluice-simulated", defaultModel: "sluice-simulated", systemPrompt: "Be brief." };
/** Text PostgreSQL cannot store or UTF-8 cannot carry, alone and around valid text. */
const unstorableText = fc.oneof(
  fc.constantFrom("\u0000", "\ud800", "\udc00", "\ud83d"),
  fc.tuple(fc.constantFrom("\u0000", "\ud800", "\udfff"), fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })).map(([bad, before, after]) => `${before}${bad}${after}`),
);

/** Bodies of the route's own fields, each valid or hostile: validation passes but for that text. */
function nearValidBody(fields: ReadonlyArray<keyof typeof validText>): fc.Arbitrary<string> {
  const field = (name: keyof typeof validText): fc.Arbitrary<string> =>
    fc.oneof(
      fc.constant(validText[name]),
      unstorableText.map((bad) => (name === "email" ? `a${bad}@example.test` : name === "content" ? `echo:${bad}` : bad)),
    );
  return fc.record(Object.fromEntries(fields.map((name) => [name, field(name)])), { requiredKeys: [] }).map((body) => JSON.stringify(body));
}
const routes: Route[] = [
  { method: "POST", path: () => "/api/auth/register", protected: false, fields: ["email", "password"] },
  { method: "POST", path: () => "/api/auth/login", protected: false, fields: ["email", "password"] },
  { method: "POST", path: () => "/api/auth/logout", protected: false },
  { method: "POST", path: () => "/api/auth/logout-all", protected: true },
  { method: "GET", path: () => "/api/me", protected: true },
  { method: "PATCH", path: () => "/api/me/settings", protected: true, fields: ["defaultModel", "systemPrompt"] },
  { method: "POST", path: () => "/api/me/api-keys", protected: true, fields: ["name"] },
  { method: "GET", path: () => "/api/me/api-keys", protected: true },
  { method: "DELETE", path: (ids) => `/api/me/api-keys/${ids.conversation}`, protected: true },
  { method: "POST", path: () => "/api/conversations", protected: true, fields: ["title"] },
  { method: "GET", path: () => "/api/conversations", protected: true },
  { method: "GET", path: () => "/api/conversations/search", protected: true },
  { method: "GET", path: (ids) => `/api/conversations/${ids.conversation}`, protected: true },
  { method: "PATCH", path: (ids) => `/api/conversations/${ids.conversation}`, protected: true, fields: ["title"] },
  { method: "DELETE", path: (ids) => `/api/conversations/${ids.conversation}`, protected: true },
  { method: "POST", path: (ids) => `/api/conversations/${ids.conversation}/messages`, protected: true, fields: ["content", "model"] },
  { method: "POST", path: (ids) => `/api/conversations/${ids.conversation}/regenerate`, protected: true, fields: ["model"] },
  { method: "POST", path: (ids) => `/api/conversations/${ids.conversation}/messages/${ids.message}/edit`, protected: true, fields: ["content", "model"] },
  { method: "POST", path: (ids) => `/api/conversations/${ids.conversation}/branch`, protected: true },
  { method: "GET", path: (ids) => `/api/stream/${ids.task}`, protected: false },
  { method: "POST", path: (ids) => `/api/stream/${ids.task}/cancel`, protected: true },
  // useChat's routes (README "Use Sluice from useChat"); a conversation id as a chat id names no chat (204, []).
  { method: "POST", path: () => "/api/chat", protected: true, fields: ["model"] },
  { method: "GET", path: (ids) => `/api/chat/${ids.conversation}/stream`, protected: true },
  { method: "GET", path: (ids) => `/api/chat/${ids.conversation}/messages`, protected: true },
];

describe("every route under random and hostile input", () => {
  it("covers every route in the OpenAPI document", async () => {
    const document = (await (await fetch(`${sluice.url}/api/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    const fuzzed = routes.map((route) => `${route.method} ${route.path({ conversation: "{id}", task: "{taskId}", message: "{messageId}" })}`);
    // /v1 answers in OpenAI's error shape, not this one: test/openai/v1-fuzzing.property.test.ts fuzzes it.
    for (const route of documented.filter((entry) => !entry.includes(" /v1/"))) expect(fuzzed).toContain(route);
  });

  for (const route of routes) {
    const label = `${route.method} ${route.path({ conversation: ":id", task: ":taskId", message: ":messageId" })}`;
    it(`${label}: never a 5xx, always the error shape`, async () => {
      const request = fc.record({
        // Mostly the real ids, so validation passes and the handler runs; sometimes random ones.
        conversation: fc.oneof({ weight: 6, arbitrary: fc.constant("") }, { weight: 2, arbitrary: pathSegment }, { weight: 1, arbitrary: rawPathSegment.map((segment) => ({ raw: segment })) }),
        task: fc.oneof({ weight: 6, arbitrary: fc.constant("") }, { weight: 2, arbitrary: pathSegment }, { weight: 1, arbitrary: rawPathSegment.map((segment) => ({ raw: segment })) }),
        body: fc.oneof(
          { weight: 4, arbitrary: jsonBody },
          { weight: route.fields === undefined ? 0 : 4, arbitrary: nearValidBody(route.fields ?? []) },
          { weight: 1, arbitrary: rawBody },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ),
        contentType: fc.oneof({ weight: 4, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: contentType }),
        query: fc.oneof({ weight: 2, arbitrary: fc.constant("") }, { weight: 1, arbitrary: queryString }),
        authorized: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.boolean() }),
        idempotencyKey: fc.option(printableHeader, { freq: 4 }),
        lastEventId: fc.option(printableHeader, { freq: 4 }),
        accept: fc.option(acceptHeader, { freq: 2 }),
      });
      await fc.assert(
        fc.asyncProperty(request, async (input) => {
          const segment = (value: string | { raw: string }, real: string): string => (typeof value !== "string" ? value.raw : value === "" ? real : encodeURIComponent(value));
          const ids = { conversation: segment(input.conversation, conversationId), task: segment(input.task, taskId), message: segment(input.task, messageId) };
          const headers: Record<string, string> = {};
          // Logout (and sign-out everywhere) ends the session it is sent with, so it gets a throwaway user's token.
          if (input.authorized) headers.authorization = `Bearer ${route.path(ids).startsWith("/api/auth/logout") ? logoutToken : user.token}`;
          if (input.contentType !== undefined && input.body !== undefined) headers["content-type"] = input.contentType;
          if (input.idempotencyKey !== null) headers["idempotency-key"] = input.idempotencyKey;
          if (input.lastEventId !== null) headers["last-event-id"] = input.lastEventId;
          if (input.accept !== null) headers.accept = input.accept;
          const hasBody = route.method !== "GET" && route.method !== "DELETE" ? input.body : undefined;
          await expectHandled({ method: route.method, path: `${route.path(ids)}${input.query}`, headers, body: hasBody });
        }),
        { seed, numRuns: runsPerRoute, endOnFailure: true },
      );
      // The fuzzing did not break the account: the real conversation still answers (unless the DELETE route removed it).
      if (route.method === "DELETE") conversationId = (await user.createConversation("fuzzed again")).id;
      const check = await user.call("GET", `/api/conversations/${conversationId}`);
      expect(check.status, check.text).toBe(200);
    }, timeoutPerRouteMs);
  }

  it("a normal message still completes afterwards, saved exactly as streamed", async () => {
    // The fuzzing ran API-only; a worker on the same database and Redis now works off the
    // backlog of accepted fuzz messages and this one.
    await sluice.startWorker();
    const conversation = await user.createConversation("after fuzzing");
    const accepted = await user.send(conversation.id, "echo:still here after the fuzzing");
    const stream = await user.stream(accepted.taskId);
    expect(expectOneEndLast(stream).status).toBe("completed");
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.content).toBe("still here after the fuzzing");
    expect(textOf(stream.events)).toBe(reply.content);
  }, 60_000);
});
