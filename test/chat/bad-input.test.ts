/**
 * Bad input is a 4xx in the one error shape, never a 500 (issue 12): text a
 * PostgreSQL `text` column refuses (U+0000) or that UTF-8 cannot carry (lone
 * surrogates) in every stored string field, ids and cursors of the wrong format,
 * and every answer Fastify or Node give by themselves (bad URL encoding, an
 * over-long path parameter, unknown routes and methods, 413, 415, 408, 431,
 * broken HTTP), read by ordinary clients over real sockets.
 */
import { createConnection } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { errorCatalog } from "../../src/errors/catalog.ts";
import { textOf } from "../support/client/read-sse.ts";
import { call, expectErrorShape, expectOneEndLast, registerUser, waitForFinalReply, type ApiAnswer, type ChatUser } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

/** Short, so the 408 case runs in `npm test`; every other request here takes milliseconds. */
const requestTimeoutMs = 2_000;

let user: ChatUser;
let conversationId: string;

const sluice = useSluice({ label: "bad-input", env: { LIMIT_REQUEST_TIMEOUT_MS: String(requestTimeoutMs) } });
beforeAll(async () => {
  user = await registerUser(sluice.url, "bad-input");
  conversationId = (await user.createConversation("kept")).id;
});

/** The answer is in the one shape, its code is in the catalog with this status, and nothing leaks. */
function expectCatalogError(answer: ApiAnswer, status: number, code?: string): void {
  expect(answer.status, answer.text).toBe(status);
  expectErrorShape(answer, code);
  const body = answer.body as { error: { code: string } };
  expect(Object.keys(answer.body as object)).toEqual(["error"]);
  expect(Object.keys(errorCatalog), answer.text).toContain(body.error.code);
  expect(errorCatalog[body.error.code as keyof typeof errorCatalog].status).toBe(status);
}

/** A request with a raw body string (fetch over a real socket), as any client could send it. */
async function callRaw(method: string, path: string, options: { token?: string; headers?: Record<string, string>; rawBody?: string } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }), ...options.headers };
  const response = await fetch(`${sluice.url}${path}`, { method, headers, ...(options.rawBody === undefined ? {} : { body: options.rawBody }) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: expectErrorShape names it
  }
  return { status: response.status, body, text, headers: response.headers };
}

function send(method: string, path: string, body: string | undefined, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  return callRaw(method, path, { token: user.token, headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers }, ...(body === undefined ? {} : { rawBody: body }) });
}

/** One HTTP exchange over a plain socket: what it wrote, and everything the server sent until it closed or answered. */
async function rawExchange(request: string, options: { waitForClose: boolean }): Promise<string> {
  const socket = createConnection({ host: "127.0.0.1", port: Number(new URL(sluice.url).port) });
  socket.on("error", () => undefined);
  let received = "";
  return new Promise<string>((resolve) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (!options.waitForClose && /\r\n\r\n[\s\S]*\}$/.test(received)) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.once("close", () => resolve(received));
    socket.once("connect", () => socket.write(request));
  });
}

/** Writes the whole request, and only then reads the answer until the server has sent it (or closed); rejects on EPIPE / ECONNRESET. */
async function writeThenRead(request: Buffer): Promise<string> {
  const socket = createConnection({ host: "127.0.0.1", port: Number(new URL(sluice.url).port) });
  socket.pause();
  const failed = new Promise<never>((_resolve, reject) => socket.once("error", reject));
  await Promise.race([failed, new Promise<void>((resolve) => socket.once("connect", () => resolve()))]);
  await Promise.race([failed, new Promise<void>((resolve, reject) => socket.write(request, (error) => (error ? reject(error) : resolve())))]);
  let received = "";
  const answered = new Promise<string>((resolve) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      const [head, body] = received.split("\r\n\r\n");
      const length = Number(/content-length: (\d+)/i.exec(head ?? "")?.[1] ?? Number.NaN);
      if (body !== undefined && Buffer.byteLength(body, "latin1") >= length) resolve(received);
    });
    socket.once("end", () => resolve(received));
  });
  socket.resume();
  try {
    return await Promise.race([failed, answered]);
  } finally {
    socket.destroy();
  }
}

function parseRawResponse(text: string): ApiAnswer {
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  const body = rest.join("\r\n\r\n");
  let parsed: unknown = body;
  try {
    parsed = JSON.parse(body);
  } catch {
    // not JSON: expectErrorShape names it
  }
  return { status, body: parsed, text: `${head}\n\n${body}`, headers: new Headers() };
}

const unstorable = { nul: "a\u0000b", loneHigh: "a\ud800b", loneLow: "\udc00" } as const;

describe("text PostgreSQL cannot store is refused as 400 VALIDATION_FAILED", () => {
  for (const [name, bad] of Object.entries(unstorable)) {
    it(`${name} in every stored or compared string field`, async () => {
      const cases: Array<[string, string, unknown]> = [
        ["POST", "/api/conversations", { title: bad }],
        ["PATCH", `/api/conversations/${conversationId}`, { title: bad }],
        ["POST", `/api/conversations/${conversationId}/messages`, { content: bad }],
        ["POST", `/api/conversations/${conversationId}/messages`, { content: "hi", model: bad }],
        ["POST", `/api/conversations/${conversationId}/regenerate`, { model: bad }],
        ["POST", `/api/conversations/${conversationId}/messages/00000000-0000-4000-8000-000000000000/edit`, { content: bad }],
        ["POST", `/api/conversations/${conversationId}/messages/00000000-0000-4000-8000-000000000000/edit`, { content: "hi", model: bad }],
        ["PATCH", "/api/me/settings", { systemPrompt: bad }],
        ["PATCH", "/api/me/settings", { defaultModel: bad }],
        ["POST", "/api/auth/register", { email: `x${bad}@example.test`, password: "long enough password" }],
        ["POST", "/api/auth/register", { email: "unstorable@example.test", password: `long enough ${bad}` }],
        ["POST", "/api/auth/login", { email: user.email, password: `long enough ${bad}` }],
      ];
      for (const [method, path, body] of cases) {
        const answer = await send(method, path, JSON.stringify(body));
        expectCatalogError(answer, 400, "VALIDATION_FAILED");
      }
      // Nothing of it was stored: the conversation keeps its title, the settings their prompt.
      expect((await user.conversation(conversationId)).title).toBe("kept");
    });
  }

  it("%00 and other malformed task ids are 404 STREAM_NOT_FOUND, like an unknown task", async () => {
    for (const taskId of ["%00", "task_%00", "a%00b", encodeURIComponent("task_\ud7ff"), "-".repeat(36)]) {
      const stream = await call(sluice.url, "GET", `/api/stream/${taskId}`, { token: user.token });
      expectCatalogError(stream, 404, "STREAM_NOT_FOUND");
      const cancel = await call(sluice.url, "POST", `/api/stream/${taskId}/cancel`, { token: user.token });
      expectCatalogError(cancel, 404, "STREAM_NOT_FOUND");
    }
  });

  it("a page cursor of the right encoding but a wrong id or time (36 dashes) is 400, not a failed cast", async () => {
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const cursor of [
      encode(["2026-01-01 00:00:00+00", "-".repeat(36)]),
      encode(["2026-01-01 00:00:00+00", "gggggggg-gggg-gggg-gggg-gggggggggggg"]),
      encode(["1", "00000000-0000-0000-0000-000000000000"]),
      encode(["2026-13-45 99:99:99+00", "00000000-0000-0000-0000-000000000000"]),
      encode(["2026-01-01 00:00:00+00\u0000", "00000000-0000-0000-0000-000000000000"]),
      "-".repeat(36),
      "%00",
    ]) {
      expectCatalogError(await call(sluice.url, "GET", `/api/conversations?cursor=${encodeURIComponent(cursor)}`, { token: user.token }), 400, "VALIDATION_FAILED");
    }
  });
});

describe("answers Fastify and Node give by themselves are in the one shape with a catalog code", () => {
  it("bad %-encoding in the path: 400", async () => {
    for (const path of ["/api/conversations/%E0%A4%A", "/api/stream/%ZZ", "/api/conversations/%"]) {
      expectCatalogError(await call(sluice.url, "GET", path, { token: user.token }), 400, "VALIDATION_FAILED");
    }
  });

  it("an over-long path parameter: 414 URL_TOO_LONG", async () => {
    expectCatalogError(await call(sluice.url, "GET", `/api/conversations/${"a".repeat(500)}`, { token: user.token }), 414, "URL_TOO_LONG");
    expectCatalogError(await call(sluice.url, "POST", `/api/stream/${"b".repeat(5_000)}/cancel`, { token: user.token }), 414, "URL_TOO_LONG");
  });

  it("an unknown route: 404 ROUTE_NOT_FOUND; a known route with another method: 405 METHOD_NOT_ALLOWED with Allow", async () => {
    expectCatalogError(await call(sluice.url, "GET", "/api/nothing/here", { token: user.token }), 404, "ROUTE_NOT_FOUND");
    const put = await call(sluice.url, "PUT", `/api/conversations/${conversationId}`, { token: user.token });
    expectCatalogError(put, 405, "METHOD_NOT_ALLOWED");
    expect(put.headers.get("allow")?.split(", ").sort()).toEqual(["DELETE", "GET", "HEAD", "PATCH"]);
    const getLogin = await call(sluice.url, "GET", "/api/auth/login");
    expectCatalogError(getLogin, 405, "METHOD_NOT_ALLOWED");
    expect(getLogin.headers.get("allow")).toBe("POST");
  });

  it("a body that is not JSON: 415 UNSUPPORTED_MEDIA_TYPE; broken JSON: 400 INVALID_JSON", async () => {
    expectCatalogError(await send("POST", "/api/conversations", "title=x", { "content-type": "application/x-www-form-urlencoded" }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectCatalogError(await send("POST", "/api/conversations", '{"title":'), 400, "INVALID_JSON");
  });

  it("a 2 MB body to any route, signed in or not, is answered 413 BODY_TOO_LARGE before the connection closes", async () => {
    const huge = JSON.stringify({ email: "big@example.test", password: "x".repeat(2 * 1024 * 1024) });
    for (const path of ["/api/auth/register", "/api/auth/login", "/api/conversations", `/api/conversations/${conversationId}/messages`]) {
      for (const token of [undefined, user.token]) {
        const answer = await callRaw("POST", path, { ...(token === undefined ? {} : { token }), headers: { "content-type": "application/json" }, rawBody: huge });
        if (path.startsWith("/api/conversations") && token === undefined) expectCatalogError(answer, 401, "UNAUTHENTICATED");
        else expectCatalogError(answer, 413, "BODY_TOO_LARGE");
      }
    }
    // Like Python's http.client or curl: the whole body is written before the answer is read.
    // Before the fix the socket was closed under such a client (EPIPE / ECONNRESET) instead of answered.
    const body = Buffer.alloc(20 * 1024 * 1024, 0x20);
    for (const framing of ["content-length", "chunked"] as const) {
      // register: 413 once the limit is seen; a protected route without a token: 401 before the body is read.
      for (const [path, status, code] of [["/api/auth/register", 413, "BODY_TOO_LARGE"], ["/api/conversations", 401, "UNAUTHENTICATED"]] as const) {
        const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${framing === "chunked" ? "Transfer-Encoding: chunked" : `Content-Length: ${body.length}`}\r\n\r\n`;
        const payload = framing === "chunked" ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]) : body;
        expectCatalogError(parseRawResponse(await writeThenRead(Buffer.concat([Buffer.from(head), payload]))), status, code);
      }
    }
  });

  it("headers too large: 431 HEADERS_TOO_LARGE; not HTTP at all: 400; headers never finished: 408 REQUEST_TIMEOUT", async () => {
    const huge = parseRawResponse(await rawExchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`, { waitForClose: true }));
    expectCatalogError(huge, 431, "HEADERS_TOO_LARGE");
    const garbage = parseRawResponse(await rawExchange("NOT HTTP AT ALL\r\n\r\n", { waitForClose: true }));
    expectCatalogError(garbage, 400, "VALIDATION_FAILED");
    // The request timeout fires by itself (LIMIT_REQUEST_TIMEOUT_MS); the socket is closed after the answer.
    const slow = parseRawResponse(await rawExchange("GET /healthz HTTP/1.1\r\nHost: x\r\n", { waitForClose: true }));
    expectCatalogError(slow, 408, "REQUEST_TIMEOUT");
  });

  it("after all of it, a normal message still completes and is saved as streamed", async () => {
    const accepted = await user.send(conversationId, "echo:still working");
    const stream = await user.stream(accepted.taskId);
    expect(expectOneEndLast(stream).status).toBe("completed");
    const reply = await waitForFinalReply(user, conversationId, accepted.taskId);
    expect(reply.content).toBe("still working");
    expect(textOf(stream.events)).toBe(reply.content);
  });
});
