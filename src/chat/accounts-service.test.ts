import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { createPasswordHasher } from "../auth/password-hashing.ts";
import { startPurgeExpiredRecords } from "../auth/purge-expired-records.ts";
import { createConcurrencyGate } from "../limits/concurrency-gate.ts";
import { openDatabase, selectRows, type Database } from "../storage/database.ts";
import { createIdempotencyRepository } from "../storage/idempotency-repository.ts";
import { conversations, idempotencyKeys, messages, sessions, users } from "../storage/schema.ts";
import { createSessionsRepository } from "../storage/sessions-repository.ts";
import { createUsersRepository } from "../storage/users-repository.ts";
import { createAccountsService, sessionTouchIntervalMs } from "./accounts-service.ts";
import { createManualClock } from "../time/manual-clock.ts";

const cheap = { cost: 2 ** 10, blockSize: 8, parallelization: 1 };
const idleMinutes = 30;
let database: Database;
let clockMs = Date.parse("2026-12-01T00:00:00Z");
const backgroundErrors: unknown[] = [];

beforeAll(async () => {
  database = await openDatabase({ url: await createTestDatabase("accounts"), dataDirectory: "/nonexistent", poolSize: 4, statementTimeoutMs: 5000 });
  await database.migrate();
});
afterAll(async () => {
  await database?.close();
});

function accountsWith(parameters = cheap, sessionTtlHours = 24 * 30) {
  return createAccountsService({
    users: createUsersRepository(database.db),
    sessions: createSessionsRepository(database.db),
    sessionTtlHours,
    sessionIdleTimeoutMinutes: idleMinutes,
    passwords: createPasswordHasher(parameters),
    hashGate: createConcurrencyGate({ running: 2, queued: 10, code: "SIGN_IN_BUSY", retryAfterSeconds: 1 }),
    loginAttempts: { attempt: () => Promise.resolve(), succeeded: () => Promise.resolve() },
    clock: { wallClockMs: () => clockMs },
    onBackgroundError: (error) => backgroundErrors.push(error),
  });
}
const lastUsedOf = async (userId: string): Promise<number[]> =>
  (await database.db.select({ lastUsedAt: sessions.lastUsedAt }).from(sessions).where(eq(sessions.userId, userId))).map((row) => row.lastUsedAt.getTime());
/** Waits for the fire-and-forget touch: polls the row (10 ms steps, 5 s deadline). */
async function waitForLastUsed(userId: string, expectedMs: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await lastUsedOf(userId))[0] !== expectedMs) {
    if (Date.now() > deadline) throw new Error(`last_used_at never became ${new Date(expectedMs).toISOString()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("sessions: idle timeout", () => {
  const touchIntervalMs = sessionTouchIntervalMs(idleMinutes * 60_000);

  it("writes a session's last use every tenth of the idle timeout, between a minute and an hour", () => {
    expect(touchIntervalMs).toBe(3 * 60_000);
    expect(sessionTouchIntervalMs(5 * 60_000)).toBe(60_000);
    expect(sessionTouchIntervalMs(7 * 24 * 60 * 60_000)).toBe(3_600_000);
  });

  it(`ends a session unused for SESSION_IDLE_TIMEOUT_MINUTES, and records use at most once per touch interval`, async () => {
    const accounts = accountsWith();
    const { user, token } = await accounts.register(`idle-${clockMs}@example.test`, "correct horse battery");
    const startedMs = clockMs;
    expect(await lastUsedOf(user.id)).toEqual([startedMs]);
    // Within the interval: authenticated, nothing written.
    clockMs += touchIntervalMs - 1;
    expect(await accounts.authenticate(token)).toEqual(user);
    expect(await lastUsedOf(user.id)).toEqual([startedMs]);
    // Past it: the use is recorded (off the request's path).
    clockMs += 1;
    expect(await accounts.authenticate(token)).toEqual(user);
    await waitForLastUsed(user.id, clockMs);
    // Used again just before the idle timeout: still alive, and the clock restarts.
    clockMs += idleMinutes * 60_000 - 1;
    expect(await accounts.authenticate(token)).toEqual(user);
    await waitForLastUsed(user.id, clockMs);
    // Then left idle for the whole timeout: refused.
    clockMs += idleMinutes * 60_000;
    expect(await accounts.authenticate(token)).toBeUndefined();
    expect(backgroundErrors).toEqual([]);
  });

  it("a session as a cache keeps it answers like the lookup: it records use, goes idle and expires on time", async () => {
    const accounts = accountsWith();
    const { user, token, session } = await accounts.register(`cached-${clockMs}@example.test`, "correct horse battery");
    const startedMs = clockMs;
    // A hit within the interval writes nothing; past it, the use is written, as a lookup would.
    expect(session.stillValid(clockMs + touchIntervalMs - 1)).toBe(true);
    expect(await lastUsedOf(user.id)).toEqual([startedMs]);
    clockMs += touchIntervalMs;
    expect(session.stillValid(clockMs)).toBe(true);
    await waitForLastUsed(user.id, clockMs);
    // The lookup agrees at every point: idle one millisecond before the timeout from that use is alive.
    const found = await accounts.findSession(token);
    expect(found?.user).toEqual(user);
    expect(session.stillValid(clockMs + idleMinutes * 60_000 - 1)).toBe(true);
    await waitForLastUsed(user.id, clockMs + idleMinutes * 60_000 - 1);
    // Unused for the whole timeout from the last use recorded: no longer valid, and the lookup finds nothing either.
    const idleAtMs = clockMs + idleMinutes * 60_000 - 1 + idleMinutes * 60_000;
    expect(session.stillValid(idleAtMs)).toBe(false);
    clockMs = idleAtMs;
    expect(await accounts.findSession(token)).toBeUndefined();
    expect(found?.stillValid(clockMs)).toBe(false);
    expect(backgroundErrors).toEqual([]);
  });

  it("a cached session is no longer valid at its expiry, however recently used", async () => {
    const accounts = accountsWith(cheap, 1);
    const { user, token, session } = await accounts.register(`expiring-${clockMs}@example.test`, "correct horse battery");
    // A lookup's copy, which knows the expiry from the row, and the sign-in's own copy.
    const found = await accounts.findSession(token);
    const expiresAtMs = clockMs + 3_600_000;
    // Both used twice within the idle timeout (the use recorded each time), then one minute before
    // the expiry (still within the idle timeout) and at it.
    for (const useAtMs of [clockMs + 29 * 60_000, clockMs + 58 * 60_000]) {
      expect(found?.stillValid(useAtMs)).toBe(true);
      expect(session.stillValid(useAtMs)).toBe(true);
      await waitForLastUsed(user.id, useAtMs);
    }
    for (const copy of [found, session]) {
      expect(copy?.stillValid(expiresAtMs - 60_000)).toBe(true);
      expect(copy?.stillValid(expiresAtMs)).toBe(false);
    }
    expect(backgroundErrors).toEqual([]);
  });
});

describe("password hashes: upgraded on the next successful sign-in", () => {
  it("rehashes a hash made with older parameters, only when the password is right", async () => {
    const address = `upgrade-${clockMs}@example.test`;
    const { user } = await accountsWith(cheap).register(address, "correct horse battery");
    const storedHash = async () => (await database.db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, user.id)))[0]?.hash ?? "";
    const old = await storedHash();
    expect(old).toMatch(/^scrypt\$1024\$8\$1\$/);
    const stronger = accountsWith({ ...cheap, cost: 2 ** 11 });
    await expect(stronger.login(address, "wrong horse")).rejects.toMatchObject({ code: "INVALID_CREDENTIALS" });
    expect(await storedHash()).toBe(old);
    await stronger.login(address, "correct horse battery");
    const upgraded = await storedHash();
    expect(upgraded).toMatch(/^scrypt\$2048\$8\$1\$/);
    // The new hash works, and is not rewritten again.
    await stronger.login(address, "correct horse battery");
    expect(await storedHash()).toBe(upgraded);
  });
});

describe("purge of expired sessions and Idempotency-Key records", () => {
  it("deletes expired and idle sessions and keys past their TTL, in bounded batches, and leaves the rest", async () => {
    const accounts = accountsWith();
    const { user, token } = await accounts.register(`purge-${clockMs}@example.test`, "correct horse battery");
    const sessionsRepository = createSessionsRepository(database.db);
    const nowMs = clockMs;
    await sessionsRepository.create(user.id, "expired", new Date(nowMs - 1000), new Date(nowMs - 2000));
    await sessionsRepository.create(user.id, "idle", new Date(nowMs + 3600_000), new Date(nowMs - idleMinutes * 60_000 - 1));
    for (let index = 0; index < 5; index += 1) await sessionsRepository.create(user.id, `idle-${index}`, new Date(nowMs + 3600_000), new Date(nowMs - 86_400_000));
    const idempotency = createIdempotencyRepository(database.db);
    await idempotency.insert(user.id, "fresh", "h", {});
    await idempotency.insert(user.id, "stale", "h", {});
    await database.db.update(idempotencyKeys).set({ createdAt: new Date(nowMs - 25 * 3600_000) }).where(eq(idempotencyKeys.key, "stale"));
    const purge = startPurgeExpiredRecords({
      sessions: sessionsRepository,
      idempotencyKeys: idempotency,
      sessionIdleTimeoutMinutes: idleMinutes,
      idempotencyKeyTtlHours: 24,
      intervalMs: 3600_000,
      batchSize: 2,
      maxBatches: 2,
      clock: createManualClock(0, { wallClockStartMs: nowMs }),
      onError: (error) => backgroundErrors.push(error),
    });
    try {
      // Seven dead sessions here (and whatever earlier tests left), at most 2 × 2 per pass.
      const passes: number[] = [];
      for (let deleted = -1; deleted !== 0; ) {
        deleted = (await purge.runOnce()).sessions;
        passes.push(deleted);
      }
      expect(Math.max(...passes)).toBe(4);
      expect(passes.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(7);
      expect(await purge.runOnce()).toEqual({ sessions: 0, idempotencyKeys: 0 });
    } finally {
      purge.stop();
    }
    expect(await accounts.authenticate(token)).toEqual(user);
    expect(await lastUsedOf(user.id)).toHaveLength(1);
    const left = await database.db.select({ key: idempotencyKeys.key }).from(idempotencyKeys).where(eq(idempotencyKeys.userId, user.id));
    expect(left.map((row) => row.key)).toEqual(["fresh"]);
  });
});

describe("Idempotency-Key records go with their conversation", () => {
  it("are tied to the conversation of their task and deleted with it", async () => {
    const { user } = await accountsWith().register(`cascade-${clockMs}@example.test`, "correct horse battery");
    const [kept, deleted] = await database.db.insert(conversations).values([{ userId: user.id }, { userId: user.id }]).returning();
    if (!kept || !deleted) throw new Error("no conversations");
    const idempotency = createIdempotencyRepository(database.db);
    for (const [key, conversation] of [["k-kept", kept], ["k-deleted", deleted]] as const) {
      await database.db.insert(messages).values({ conversationId: conversation.id, userId: user.id, role: "assistant", status: "streaming", taskId: `task-${key}` });
      await idempotency.insert(user.id, key, "h", {});
      await idempotency.saveResponse(user.id, key, { taskId: `task-${key}`, assistantMessage: { id: "x", status: "streaming" } });
    }
    await database.db.delete(conversations).where(eq(conversations.id, deleted.id));
    const rows = await selectRows<{ key: string; conversation_id: string }>(database.db, sql`select key, conversation_id from idempotency_keys where user_id = ${user.id}`);
    expect(rows).toEqual([{ key: "k-kept", conversation_id: kept.id }]);
  });
});
