/**
 * Abuse: what a hostile or broken client may send. Bad tokens get 401, bad
 * bodies a 4xx in the one error shape, floods a 429 with Retry-After, a
 * trickling socket is cut off, and no secret reaches a log, an error body or
 * the job data in Redis; user text cannot forge a log line.
 */
import { randomBytes } from "node:crypto";
import { createConnection } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamTokenSigner } from "../../src/auth/stream-read-tokens.ts";
import { connectTestRedis } from "../support/servers/redis.ts";
import { createStreamRecorder } from "../support/client/stream-recorder.ts";
import { ApiError, call, expectStatus, registerUser, testPassword } from "../support/client/chat-api.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

const canary = {
  authSecret: `authsecret-canary-${randomBytes(16).toString("hex")}`,
  openAiKey: `sk-canary-${randomBytes(16).toString("hex")}`,
  password: `password-canary-${randomBytes(8).toString("hex")}`,
};
const forgedMessage = `FORGED-${randomBytes(4).toString("hex")}`;
const forgery = `\n{"level":60,"time":1,"pid":1,"msg":"${forgedMessage}"}\n`;
/** Every response body the tests received, scanned for secrets at the end. */
const bodies: string[] = [];
let cluster: ProcessSluice;
let limited: ProcessSluice;
/** The limited cluster's LIMIT_REQUEST_TIMEOUT_MS, short so the slowloris case runs in `npm test`. */
const requestTimeoutMs = 2_000;

beforeAll(async () => {
  [cluster, limited] = await Promise.all([
    // Without the session cache: hand edits in PostgreSQL (an expiry moved back, a user deleted) are
    // seen at once only then; the cache trusts a session for SESSION_CACHE_TTL_MS (RELIABILITY.md),
    // and its own expiry, idle and revocation checks are tested in src/auth and src/chat.
    startSluice({
      mode: "processes",
      env: { AUTH_SECRET: canary.authSecret, OPENAI_API_KEY: canary.openAiKey, LOG_LEVEL: "debug", SIMULATED_TOKENS_PER_SECOND: "2000", SESSION_CACHE_TTL_MS: "0" },
      label: "abuse",
    }),
    startSluice({
      mode: "processes",
      env: { LIMIT_AUTH_PER_MINUTE: "3", LIMIT_MESSAGES_PER_MINUTE: "2", LIMIT_OPEN_STREAMS_PER_USER: "2", LIMIT_REQUEST_TIMEOUT_MS: String(requestTimeoutMs), SIMULATED_TOKENS_PER_SECOND: "5" },
      label: "limits",
    }),
  ]);
}, clusterStartTimeoutMs);
afterAll(async () => {
  await Promise.all([cluster?.stop(), limited?.stop()]);
});

async function raw(url: string, init: RequestInit = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(url, init);
  const body = await response.text();
  bodies.push(body);
  return { status: response.status, body, headers: response.headers };
}

function expectError(result: { status: number; body: string }, status: number, code?: string): void {
  expect(result.status, result.body).toBe(status);
  const parsed = JSON.parse(result.body) as { error: { code: string; message: string } };
  expect(Object.keys(parsed)).toEqual(["error"]);
  if (code) expect(parsed.error.code).toBe(code);
  expect(result.body).not.toMatch(/at .*\.ts:\d+/);
}

describe("authentication abuse", () => {
  it("missing, malformed, forged, alg:none, expired and deleted-user tokens get 401", async () => {
    const session = await registerUser(cluster.url, "auth", canary.password);
    const conversationId = (await session.createConversation()).id;
    const accepted = await session.send(conversationId, "echo:hello");
    const me = (authorization?: string) => raw(`${cluster.url}/api/me`, authorization === undefined ? {} : { headers: { authorization } });
    expect((await me(`Bearer ${session.token}`)).status).toBe(200);
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const claims = Buffer.from(JSON.stringify({ sub: session.userId, exp: 9_999_999_999 })).toString("base64url");
    for (const authorization of [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "Basic dXNlcjpwYXNz",
      `Bearer ${session.token}x`,
      `Bearer sls_${randomBytes(32).toString("base64url")}`,
      `Bearer ${header}.${claims}.`,
      `Bearer ${"A".repeat(5_000)}`,
      "Bearer %00%01",
    ]) {
      expectError(await me(authorization), 401, "UNAUTHENTICATED");
    }

    // Read tokens for ?token=: forged with another secret, expired, for another task, unsigned.
    const streamUrl = (token: string) => `${cluster.url}/api/stream/${accepted.taskId}?token=${encodeURIComponent(token)}`;
    const foreignSigner = createStreamTokenSigner("x".repeat(40), 900);
    const rightSigner = createStreamTokenSigner(canary.authSecret, 10);
    for (const token of [
      foreignSigner.sign(accepted.taskId, session.userId, Date.now()),
      rightSigner.sign(accepted.taskId, session.userId, Date.now() - 60_000),
      rightSigner.sign("task_other", session.userId, Date.now()),
      `v1.${session.userId}.9999999999.`,
      `${header}.${claims}.`,
    ]) {
      expectError(await raw(streamUrl(token)), 401, "UNAUTHENTICATED");
    }
    expect((await raw(streamUrl(rightSigner.sign(accepted.taskId, session.userId, Date.now())))).status).toBe(200);

    const database = new pg.Client({ connectionString: cluster.env.DATABASE_URL });
    await database.connect();
    try {
      // Expired session: the row stays, its expiry passed.
      const expiring = await registerUser(cluster.url, "expired");
      await database.query("update sessions set expires_at = now() - interval '1 minute' where user_id = $1", [expiring.userId]);
      expectError(await me(`Bearer ${expiring.token}`), 401, "UNAUTHENTICATED");
      // Deleted user (removed in PostgreSQL by hand; Sluice has no such route): the session is dead.
      const deleted = await registerUser(cluster.url, "deleted");
      const deletedConversation = (await deleted.createConversation()).id;
      const deletedTask = await deleted.send(deletedConversation, "echo:bye");
      await database.query("delete from users where id = $1", [deleted.userId]);
      expectError(await me(`Bearer ${deleted.token}`), 401, "UNAUTHENTICATED");
      // A stream read token is a signed capability for its one task until it expires (PROTOCOL.md 1.2,
      // STREAM_TOKEN_TTL_SECONDS), like a signed URL: the stream route no longer asks PostgreSQL while the
      // log exists (issue 13). It still reads only that task (above) and dies at expiry; deleting the
      // conversation through the API ends the log itself.
      const readAsDeleted = await raw(`${cluster.url}${deletedTask.streamUrl}`);
      expect(readAsDeleted.status, readAsDeleted.body).toBe(200);
    } finally {
      await database.end();
    }
  });
});

describe("request abuse", () => {
  it("oversized bodies get 413 BODY_TOO_LARGE, over-long messages 413 MESSAGE_TOO_LONG, deep or poisoned JSON a 4xx", async () => {
    const session = await registerUser(cluster.url, "bodies");
    const conversationId = (await session.createConversation()).id;
    const post = (body: string) =>
      raw(`${cluster.url}/api/conversations/${conversationId}/messages`, { method: "POST", headers: { authorization: `Bearer ${session.token}`, "content-type": "application/json" }, body });
    expectError(await post(JSON.stringify({ content: "x".repeat(1_100_000) })), 413, "BODY_TOO_LARGE");
    expectError(await post(JSON.stringify({ content: "x".repeat(40_000) })), 413, "MESSAGE_TOO_LONG");
    for (const body of [
      `{"content":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
      `${"[".repeat(200_000)}${"]".repeat(200_000)}`,
      '{"content":"hi","__proto__":{"polluted":true}}',
      '{"content":"hi","constructor":{"prototype":{"polluted":true}}}',
      '{"content":"hi"',
      "",
    ]) {
      const result = await post(body);
      expect(result.status, `${body.slice(0, 60)} → ${result.body}`).toBeGreaterThanOrEqual(400);
      expect(result.status, `${body.slice(0, 60)} → ${result.body}`).toBeLessThan(500);
    }
    // The server is still healthy and the conversation has no message from any of that.
    expect((await raw(`${cluster.url}/healthz`)).status).toBe(200);
    const conversation = expectStatus(await call<{ messages: unknown[] }>(cluster.url, "GET", `/api/conversations/${conversationId}`, { token: session.token }), 200);
    expect(conversation.messages).toEqual([]);
  });

  it("mass assignment: extra fields (owner, role, status, ids, __proto__) are refused with 400 VALIDATION_FAILED and change nothing", async () => {
    const session = await registerUser(cluster.url, "mass");
    const other = await registerUser(cluster.url, "mass-other");
    const conversationId = (await session.createConversation()).id;
    const hostile = [
      { owner: other.userId },
      { userId: other.userId },
      { role: "admin" },
      { status: "completed" },
      { id: "00000000-0000-4000-8000-000000000000" },
      { taskId: "task_forged" },
    ];
    const routes: Array<{ method: string; path: string; body: Record<string, unknown>; token?: string }> = [
      { method: "POST", path: "/api/auth/register", body: { email: `mass-${randomBytes(4).toString("hex")}@example.test`, password: "long enough password" } },
      { method: "PATCH", path: "/api/me/settings", body: { systemPrompt: "be brief" }, token: session.token },
      { method: "POST", path: "/api/conversations", body: { title: "t" }, token: session.token },
      { method: "PATCH", path: `/api/conversations/${conversationId}`, body: { title: "renamed" }, token: session.token },
      { method: "POST", path: `/api/conversations/${conversationId}/messages`, body: { content: "hi" }, token: session.token },
      { method: "POST", path: `/api/conversations/${conversationId}/regenerate`, body: {}, token: session.token },
    ];
    const send = (route: (typeof routes)[number], body: string) =>
      raw(`${cluster.url}${route.path}`, {
        method: route.method,
        headers: { "content-type": "application/json", ...(route.token ? { authorization: `Bearer ${route.token}` } : {}) },
        body,
      });
    for (const route of routes) {
      for (const extra of hostile) expectError(await send(route, JSON.stringify({ ...route.body, ...extra })), 400, "VALIDATION_FAILED");
      // A literal "__proto__" key (JSON.stringify cannot write one from an object literal).
      const proto = await send(route, `${JSON.stringify(route.body).slice(0, -1)}${Object.keys(route.body).length > 0 ? "," : ""}"__proto__":{"role":"admin"}}`);
      expect(proto.status, `${route.method} ${route.path} → ${proto.body}`).toBeGreaterThanOrEqual(400);
      expect(proto.status, `${route.method} ${route.path} → ${proto.body}`).toBeLessThan(500);
    }
    // Nothing changed: the conversation is untitled and empty, the settings untouched, and the other user sees nothing.
    const conversation = expectStatus(await call<{ title: string | null; messages: unknown[] }>(cluster.url, "GET", `/api/conversations/${conversationId}`, { token: session.token }), 200);
    expect(conversation).toMatchObject({ title: null, messages: [] });
    const me = expectStatus(await call<{ settings?: { systemPrompt: string | null }; systemPrompt?: string | null }>(cluster.url, "GET", "/api/me", { token: session.token }), 200);
    expect(JSON.stringify(me)).not.toContain("be brief");
    const list = expectStatus(await call<{ items: unknown[] }>(cluster.url, "GET", "/api/conversations", { token: other.token }), 200);
    expect(list.items).toEqual([]);
  });

  it("slowloris: a socket that trickles headers is answered 408 and closed after LIMIT_REQUEST_TIMEOUT_MS", async () => {
    const socket = createConnection({ host: "127.0.0.1", port: Number(new URL(limited.url).port) });
    socket.on("error", () => undefined);
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    const openedAt = Date.now();
    socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // One header line every 200 ms: each keeps the socket busy, none completes the request.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(`X-Slow-${Date.now()}: 1\r\n`);
    }, 200);
    try {
      // Cut within 1.25 × the limit (the check interval is a quarter of it); 30 s is slack for a loaded machine.
      const closedAt = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 30_000))]);
      expect(closedAt, "the trickling socket was still open after 30 s").toBeGreaterThan(0);
      expect(closedAt - openedAt).toBeGreaterThanOrEqual(requestTimeoutMs - 50);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  }, 60_000);
});

describe("floods", () => {
  it("messages, open streams and sign-ins past their limits get 429 with Retry-After", async () => {
    // LIMIT_AUTH_PER_MINUTE=3 counts per IP: this sign-up is the first of three.
    const session = await registerUser(limited.url, "flood");
    const conversations = await Promise.all([1, 2, 3].map(async () => (await session.createConversation()).id));
    const accepted = [];
    for (const conversationId of conversations.slice(0, 2)) accepted.push(await session.send(conversationId, "A long answer please"));
    const third = await session.send(conversations[2] ?? "", "one more").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(third).toBeInstanceOf(ApiError);
    const flooded = third as ApiError;
    bodies.push(flooded.body);
    expectError(flooded, 429, "RATE_LIMITED");
    expect(Number(flooded.headers.get("retry-after"))).toBeGreaterThan(0);

    // Two open streams are allowed; the third gets 429 before any SSE byte.
    const controller = new AbortController();
    const recorder = createStreamRecorder(session);
    const opened: string[] = [];
    const reading: Array<Promise<unknown>> = [];
    // Both sets of response headers: the two leases are held before the third request.
    await Promise.all(
      accepted.map(
        (task) =>
          new Promise<void>((resolve) => {
            const read = recorder.read(task.taskId, {
              signal: controller.signal,
              onResponse: (status) => {
                opened.push(String(status));
                resolve();
              },
            });
            reading.push(read);
            // A read that ends without headers (refused connection) also ends the wait; `opened` then tells.
            void read.finally(resolve);
          }),
      ),
    );
    expect(opened).toEqual(["200", "200"]);
    const extra = await raw(`${limited.url}/api/stream/${accepted[0]?.taskId ?? ""}`, { headers: { authorization: `Bearer ${session.token}` } });
    expectError(extra, 429, "TOO_MANY_OPEN_STREAMS");
    expect(Number(extra.headers.get("retry-after"))).toBeGreaterThan(0);
    controller.abort();
    await Promise.all(reading);

    const login = () => raw(`${limited.url}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: session.email, password: testPassword }) });
    expect((await login()).status).toBe(200);
    expect((await login()).status).toBe(200);
    const refused = await login();
    expectError(refused, 429, "RATE_LIMITED");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});

describe("secrets and log integrity", () => {
  it("user text cannot forge a log line", async () => {
    const session = await registerUser(cluster.url, "forge");
    const conversationId = (await session.createConversation()).id;
    const accepted = await session.send(conversationId, `echo:hello${forgery}bye`);
    await createStreamRecorder(session).follow(accepted.taskId);
    await raw(`${cluster.url}/api/conversations/${conversationId}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${session.token}`, "content-type": "application/json" },
      body: JSON.stringify({ content: "x", model: `m${forgery}` }),
    });
    await raw(`${cluster.url}/api/${encodeURIComponent(forgery)}`);
    await raw(`${cluster.url}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: `a${forgery}@x.test`, password: forgery }) });
    const lines = cluster.output().split("\n").filter((line) => line.trim() !== "");
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      let parsed: { msg?: unknown };
      try {
        parsed = JSON.parse(line) as { msg?: unknown };
      } catch {
        throw new Error(`a log line is not JSON: ${line.slice(0, 200)}`);
      }
      expect(parsed.msg, line.slice(0, 200)).not.toBe(forgedMessage);
    }
  });

  it("no secret in the logs, error bodies or the job data in Redis", async () => {
    const session = await registerUser(cluster.url, "secrets", canary.password);
    const conversationId = (await session.createConversation()).id;
    const accepted = await session.send(conversationId, "echo:secret check");
    await createStreamRecorder(session).follow(accepted.taskId);
    // A failed sign-in with the canary password, and requests carrying the bearer token in odd places.
    await raw(`${cluster.url}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: session.email, password: `${canary.password}x` }) });
    await raw(`${cluster.url}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "not-an-email", password: canary.password }) });
    await raw(`${cluster.url}/api/me?token=${session.token}`, { headers: { authorization: `Bearer ${session.token}` } });
    await raw(`${cluster.url}/api/conversations/not-a-uuid`, { headers: { authorization: `Bearer ${session.token}` } });
    const redis = connectTestRedis();
    const stored: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${cluster.env.REDIS_KEY_PREFIX}*`, "COUNT", 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === "hash") stored.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === "string") stored.push((await redis.get(key)) ?? "");
        else if (type === "stream") stored.push(JSON.stringify(await redis.xrange(key, "-", "+")));
        else if (type === "list") stored.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      }
    } while (cursor !== "0");
    expect(stored.join("\n")).toContain(accepted.taskId);
    const places = { logs: cluster.output(), bodies: bodies.join("\n"), redis: stored.join("\n") };
    const secrets = { ...canary, bearerToken: session.token };
    for (const [place, text] of Object.entries(places)) {
      for (const [name, secret] of Object.entries(secrets)) {
        expect(text.includes(secret), `${name} appears in ${place}`).toBe(false);
      }
    }
  });

  it("stream read tokens (credentials in the URL) are not logged", async () => {
    const session = await registerUser(cluster.url, "readtoken");
    const conversationId = (await session.createConversation()).id;
    const accepted = await session.send(conversationId, "echo:read token");
    const result = await raw(`${cluster.url}${accepted.streamUrl}`);
    expect(result.status).toBe(200);
    const token = new URL(accepted.streamUrl, cluster.url).searchParams.get("token") ?? "";
    expect(token.length).toBeGreaterThan(20);
    expect(cluster.output().includes(token), "the read token appears in the log").toBe(false);
  });
});
