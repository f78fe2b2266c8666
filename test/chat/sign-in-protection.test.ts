import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { call, expectErrorShape, registerUser, type ApiAnswer } from "../support/client/chat-api.ts";
import { connectTestRedis } from "../support/servers/redis.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

// Sign-in behind a proxy and against guessing (issue 12). The test process plays nginx: it
// connects from 127.0.0.1 and sends X-Forwarded-For as nginx's `$proxy_add_x_forwarded_for`
// would, i.e. whatever the client sent, then the client's address.
const email = (label: string): string => `${label}-${randomBytes(5).toString("hex")}@example.test`;
const login = (url: string, body: { email: string; password: string }, forwardedFor?: string): Promise<ApiAnswer> =>
  call(url, "POST", "/api/auth/login", { body, ...(forwardedFor === undefined ? {} : { headers: { "x-forwarded-for": forwardedFor } }) });

describe("LIMIT_AUTH_PER_MINUTE behind a proxy (TRUST_PROXY)", () => {
  let behindProxy: InProcessSluice;
  let direct: InProcessSluice;
  beforeAll(async () => {
    [behindProxy, direct] = await Promise.all([
      startSluice({ label: "proxied", topology: { apis: 1, workers: 0 }, env: { TRUST_PROXY: "1", LIMIT_AUTH_PER_MINUTE: "3" } }),
      startSluice({ label: "direct", topology: { apis: 1, workers: 0 }, env: { LIMIT_AUTH_PER_MINUTE: "3" } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([behindProxy?.stop(), direct?.stop()]);
  });

  it("limits each client behind the proxy separately, and a client-sent X-Forwarded-For does not escape its limit", async () => {
    const attempt = (forwardedFor: string) => login(behindProxy.url, { email: email("guess"), password: "wrong password" }, forwardedFor);
    for (let index = 0; index < 3; index += 1) expect((await attempt("203.0.113.1")).status).toBe(401);
    const limited = await attempt("203.0.113.1");
    expect(limited.status).toBe(429);
    expectErrorShape(limited, "RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another client behind the same proxy is not locked out by the first one.
    expect((await attempt("203.0.113.2")).status).toBe(401);
    // The first client forging an address in front of the one nginx appended is still itself.
    for (const forged of ["198.51.100.7, 203.0.113.1", "203.0.113.2, 203.0.113.1", "unknown, 203.0.113.1"]) {
      expect((await attempt(forged)).status, forged).toBe(429);
    }
  });

  it("ignores X-Forwarded-For when TRUST_PROXY is unset (the client is the socket's peer)", async () => {
    const attempt = (forwardedFor: string) => login(direct.url, { email: email("guess"), password: "wrong password" }, forwardedFor);
    for (let index = 0; index < 3; index += 1) expect((await attempt(`203.0.113.${index + 10}`)).status).toBe(401);
    expect((await attempt("203.0.113.99")).status).toBe(429);
  });
});

describe("sign-in attempts per account (LIMIT_LOGIN_ATTEMPTS_PER_ACCOUNT)", () => {
  let sluice: InProcessSluice;
  beforeAll(async () => {
    sluice = await startSluice({ label: "per-account", topology: { apis: 1, workers: 0 }, env: { TRUST_PROXY: "1", LIMIT_LOGIN_ATTEMPTS_PER_ACCOUNT: "3" } });
  });
  afterAll(async () => {
    await sluice?.stop();
  });

  it("stops a guesser who rotates addresses, without locking out other accounts", async () => {
    const victim = await registerUser(sluice.url, "victim");
    const bystander = await registerUser(sluice.url, "bystander");
    for (let index = 0; index < 3; index += 1) {
      expect((await login(sluice.url, { email: victim.email, password: `guess-${index}` }, `198.51.100.${index + 1}`)).status).toBe(401);
    }
    // From a fresh address, and even with the right password: the account is throttled for the window.
    const refused = await login(sluice.url, { email: victim.email.toUpperCase(), password: "correct horse battery" }, "198.51.100.200");
    expect(refused.status).toBe(429);
    expectErrorShape(refused, "RATE_LIMITED");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(60);
    expect((await login(sluice.url, { email: bystander.email, password: "correct horse battery" }, "198.51.100.1")).status).toBe(200);
    // Unknown emails are throttled the same way, so the answer does not tell which accounts exist.
    const unknown = email("nobody");
    for (let index = 0; index < 3; index += 1) expect((await login(sluice.url, { email: unknown, password: "x" }, `192.0.2.${index + 1}`)).status).toBe(401);
    expect((await login(sluice.url, { email: unknown, password: "x" }, "192.0.2.100")).status).toBe(429);
  });

  it("a successful sign-in clears the account's count", async () => {
    const owner = await registerUser(sluice.url, "typo");
    for (let index = 0; index < 2; index += 1) expect((await login(sluice.url, { email: owner.email, password: "typo" })).status).toBe(401);
    expect((await login(sluice.url, { email: owner.email, password: "correct horse battery" })).status).toBe(200);
    for (let index = 0; index < 3; index += 1) expect((await login(sluice.url, { email: owner.email, password: "typo" })).status).toBe(401);
  });
});

describe("password hashes running at once (LIMIT_PASSWORD_HASHES)", () => {
  let sluice: InProcessSluice;
  beforeAll(async () => {
    // Production scrypt (N=2^17, ~0.5 s a hash here), one at a time, one waiting.
    sluice = await startSluice({ label: "hash-gate", topology: { apis: 1, workers: 0 }, env: { TEST_ONLY_WEAK_PASSWORD_HASHING: "false", LIMIT_PASSWORD_HASHES: "1", LIMIT_PASSWORD_HASH_QUEUE: "1" } });
  });
  afterAll(async () => {
    await sluice?.stop();
  });

  it("answers 503 SIGN_IN_BUSY with Retry-After beyond the cap and its queue, and serves the rest", async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => call(sluice.url, "POST", "/api/auth/register", { body: { email: email("burst"), password: "correct horse battery" } })),
    );
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([201, 201, 503, 503, 503, 503]);
    for (const busy of answers.filter((answer) => answer.status === 503)) {
      expectErrorShape(busy, "SIGN_IN_BUSY");
      expect(busy.headers.get("retry-after")).toBe("1");
    }
  });
});

describe("sign out everywhere (POST /api/auth/logout-all)", () => {
  let sluice: InProcessSluice;
  beforeAll(async () => {
    // Two API processes with the session cache on (the default): the sign-out on one must reach the other's cache.
    sluice = await startSluice({ label: "logout-all", topology: { apis: 2, workers: 0 } });
  });
  afterAll(async () => {
    await sluice?.stop();
  });

  it("ends every session of the user and no one else's, on every API process", async () => {
    const urls = sluice.apis.map((api) => api.url ?? "");
    const user = await registerUser(sluice.url, "everywhere");
    const other = await registerUser(sluice.url, "other");
    const second = await login(sluice.url, { email: user.email, password: "correct horse battery" });
    expect(second.status).toBe(200);
    const secondToken = (second.body as { token: string }).token;
    // Both sessions are now cached on both processes (from the sign-ins on the first, by a lookup on the second).
    for (const url of urls) {
      for (const token of [user.token, secondToken, other.token]) expect((await call(url, "GET", "/api/me", { token })).status).toBe(200);
    }
    expect((await user.call("POST", "/api/auth/logout-all")).status).toBe(204);
    // The first process forgot them before answering; the second, once the revocation crossed Redis.
    for (const url of urls) {
      await vi.waitFor(async () => {
        for (const token of [user.token, secondToken]) {
          const after = await call(url, "GET", "/api/me", { token });
          expect(after.status).toBe(401);
          expectErrorShape(after, "UNAUTHENTICATED");
        }
      });
      expect((await call(url, "GET", "/api/me", { token: other.token })).status).toBe(200);
    }
    expect((await call(sluice.url, "POST", "/api/auth/logout-all")).status).toBe(401);
  });

  it("announces a sign-out to the other processes only when it ended a session", async () => {
    const user = await registerUser(sluice.url, "announced");
    const listener = connectTestRedis();
    try {
      const channel = `${sluice.env.REDIS_KEY_PREFIX ?? ""}sessions:revoked`;
      await listener.subscribe(channel);
      const announced: string[] = [];
      const first = new Promise<void>((resolve) =>
        listener.on("message", (_channel: string, message: string) => {
          announced.push(message);
          resolve();
        }),
      );
      // Tokens that are no session's: 204 as always, and nothing published (it would void every
      // process's session lookups in flight).
      for (const junk of ["sls_not-a-session", user.token.slice(0, -2)]) {
        expect((await call(sluice.url, "POST", "/api/auth/logout", { token: junk })).status).toBe(204);
      }
      expect((await user.call("POST", "/api/auth/logout")).status).toBe(204);
      // One publisher connection, in order: the first message is the real sign-out's.
      await first;
      expect(announced).toHaveLength(1);
      expect(announced[0]).toBe(createHash("sha256").update(user.token).digest("base64url"));
    } finally {
      listener.disconnect();
    }
  });
});
