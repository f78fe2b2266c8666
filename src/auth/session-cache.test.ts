import { EventEmitter } from "node:events";
import { describe, expect, test, vi } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import { createSessionCache, type CachedSession, type SessionCacheOptions } from "./session-cache.ts";

interface User {
  id: string;
}

/** The wall clock runs far from the monotonic one, so a mix-up of the two shows. */
const wallOffsetMs = 1_800_000_000_000;

/** A session valid until `validUntilMs` on the wall clock (for ever by default). */
const live = (user: User, validUntilMs = Number.POSITIVE_INFINITY): CachedSession<User> => ({ user, stillValid: (nowMs) => nowMs < validUntilMs });

/** One cache on a stand-in subscriber and publisher (no Redis), for what real Redis cannot be made to do on cue. */
function standaloneCache(options: Partial<SessionCacheOptions<User>> & Pick<SessionCacheOptions<User>, "subscriber">) {
  return createSessionCache<User>({
    load: () => Promise.resolve(undefined),
    ttlMs: 60_000,
    maxEntries: 100,
    channel: "sessions:revoked",
    publisher: { publish: () => Promise.resolve(1) },
    clock: { monotonicMs: () => 0, wallClockMs: () => wallOffsetMs },
    ...options,
  });
}

/** Two "API processes": each its own cache and subscriber connection, one shared Redis. */
async function twoProcesses(sessions: Map<string, User>, ttlMs = 60_000) {
  const channel = `${uniqueKeyPrefix("sessions")}sessions:revoked`;
  const publisher = connectTestRedis();
  let clock = 0;
  const sessionOf = (token: string): CachedSession<User> | undefined => {
    const user = sessions.get(token);
    return user && live(user);
  };
  const loads = vi.fn((token: string) => Promise.resolve(sessionOf(token)));
  const make = async () => {
    const subscriber = connectTestRedis();
    const subscribed = new Promise<void>((resolve) => {
      const original = subscriber.subscribe.bind(subscriber);
      subscriber.subscribe = ((...channels: string[]) => original(...channels).finally(resolve)) as typeof subscriber.subscribe;
    });
    const cache = createSessionCache<User>({ load: loads, ttlMs, maxEntries: 100, channel, subscriber, publisher, clock: { monotonicMs: () => clock, wallClockMs: () => wallOffsetMs + clock } });
    // With TTL 0 the cache subscribes to nothing.
    if (ttlMs > 0) await subscribed;
    return cache;
  };
  const [first, second] = [await make(), await make()];
  return { first, second, loads, advance: (ms: number) => (clock += ms) };
}

describe("session cache", () => {
  test("a found session is served from memory until its TTL; misses are never cached", async () => {
    const sessions = new Map([["good", { id: "u1" }]]);
    const { first, loads, advance } = await twoProcesses(sessions, 10_000);
    expect(await first.authenticate("good")).toEqual({ id: "u1" });
    expect(await first.authenticate("good")).toEqual({ id: "u1" });
    expect(loads).toHaveBeenCalledTimes(1);
    expect(await first.authenticate("bad")).toBeUndefined();
    expect(await first.authenticate("bad")).toBeUndefined();
    expect(loads).toHaveBeenCalledTimes(3);
    advance(10_001);
    sessions.delete("good");
    expect(await first.authenticate("good")).toBeUndefined();
  });

  test("parallel requests with one token share one lookup, but never one that began before a revocation", async () => {
    const sessions = new Map([["token-a", { id: "u1" }]]);
    const { first, loads } = await twoProcesses(sessions);
    const parallel = await Promise.all([first.authenticate("token-a"), first.authenticate("token-a"), first.authenticate("token-a")]);
    expect(parallel).toEqual([{ id: "u1" }, { id: "u1" }, { id: "u1" }]);
    expect(loads).toHaveBeenCalledTimes(1);

    // A lookup in flight reads the session; the sign-out lands before it answers.
    await first.revokeToken("token-a");
    let answerStaleLookup!: (session: CachedSession<User> | undefined) => void;
    loads.mockImplementationOnce(() => new Promise((resolve) => (answerStaleLookup = resolve)));
    const beforeSignOut = first.authenticate("token-a");
    sessions.delete("token-a");
    await first.revokeToken("token-a");
    // A request after the sign-out looks the session up itself and finds it gone.
    expect(await first.authenticate("token-a")).toBeUndefined();
    answerStaleLookup(live({ id: "u1" }));
    expect(await beforeSignOut).toEqual({ id: "u1" });
    expect(loads).toHaveBeenCalledTimes(3);
    // What the stale lookup found was not cached either.
    expect(await first.authenticate("token-a")).toBeUndefined();
  });

  test("a sign-out on one process is seen by the other before its TTL", async () => {
    const sessions = new Map([["token-a", { id: "u1" }]]);
    const { first, second } = await twoProcesses(sessions);
    expect(await second.authenticate("token-a")).toEqual({ id: "u1" });
    sessions.delete("token-a");
    await first.revokeToken("token-a");
    // The notification travels over Redis pub/sub; wait for its effect, not for a guessed time.
    await vi.waitFor(async () => expect(await second.authenticate("token-a")).toBeUndefined());
  });

  test("sign out everywhere drops every cached session of that user, and only theirs", async () => {
    const sessions = new Map([
      ["a1", { id: "u1" }],
      ["a2", { id: "u1" }],
      ["b1", { id: "u2" }],
    ]);
    const { first, second, loads } = await twoProcesses(sessions);
    for (const token of ["a1", "a2", "b1"]) await second.authenticate(token);
    sessions.delete("a1");
    sessions.delete("a2");
    await first.revokeUser("u1");
    await vi.waitFor(async () => expect(await second.authenticate("a1")).toBeUndefined());
    expect(await second.authenticate("a2")).toBeUndefined();
    const before = loads.mock.calls.length;
    expect(await second.authenticate("b1")).toEqual({ id: "u2" });
    expect(loads.mock.calls.length).toBe(before);
  });

  test("an entry never outlives its session: a hit past its expiry or idle timeout asks the store again", async () => {
    const sessions = new Map([["good", { id: "u1" }]]);
    const { first, loads, advance } = await twoProcesses(sessions);
    loads.mockImplementationOnce(() => Promise.resolve(live({ id: "u1" }, wallOffsetMs + 5_000)));
    expect(await first.authenticate("good")).toEqual({ id: "u1" });
    advance(4_999);
    expect(await first.authenticate("good")).toEqual({ id: "u1" });
    expect(loads).toHaveBeenCalledTimes(1);
    // The session ended (in the store too) well within the cache's TTL.
    advance(1);
    sessions.delete("good");
    expect(await first.authenticate("good")).toBeUndefined();
    expect(loads).toHaveBeenCalledTimes(2);
  });

  test("a session created by a sign-in is cached at once, unless a revocation landed while the sign-in ran", async () => {
    const sessions = new Map<string, User>();
    const { first, loads } = await twoProcesses(sessions);
    const signedIn = await first.remember(() => Promise.resolve({ token: "new", session: live({ id: "u1" }) }));
    expect(signedIn.token).toBe("new");
    expect(await first.authenticate("new")).toEqual({ id: "u1" });
    expect(loads).not.toHaveBeenCalled();

    // "Sign out everywhere" lands between the session's insert and the sign-in's return.
    let finishSignIn!: () => void;
    const racing = first.remember(() => new Promise<{ token: string; session: CachedSession<User> }>((resolve) => (finishSignIn = () => resolve({ token: "raced", session: live({ id: "u2" }) }))));
    await first.revokeUser("u2");
    finishSignIn();
    await racing;
    expect(await first.authenticate("raced")).toBeUndefined();
    expect(loads).toHaveBeenCalledWith("raced");
  });

  test("TTL 0 turns it off: every call asks the store", async () => {
    const sessions = new Map([["good", { id: "u1" }]]);
    const { first, loads } = await twoProcesses(sessions, 0);
    await first.authenticate("good");
    await first.authenticate("good");
    expect(loads).toHaveBeenCalledTimes(2);
  });

  test("a closed subscriber connection drops every entry, and nothing is cached until the channel is subscribed again", async () => {
    // A stand-in for the subscriber connection, so its SUBSCRIBE answers when the test says.
    const subscriber = Object.assign(new EventEmitter(), {
      answers: [] as (() => void)[],
      subscribe: vi.fn(() => new Promise<void>((resolve) => subscriber.answers.push(resolve))),
    });
    const loads = vi.fn((token: string) => Promise.resolve(live({ id: token })));
    const cache = standaloneCache({ load: loads, subscriber });
    const signIn = (token: string) => cache.remember(() => Promise.resolve({ token, session: live({ id: token }) }));
    const lookupsOf = (token: string) => loads.mock.calls.filter(([called]) => called === token).length;

    // Before the first SUBSCRIBE is answered: neither a sign-in nor a lookup is kept.
    await signIn("early");
    await cache.authenticate("early");
    await cache.authenticate("early");
    expect(lookupsOf("early")).toBe(2);
    subscriber.answers.shift()?.();
    await vi.waitFor(async () => {
      await signIn("kept");
      await cache.authenticate("kept");
      expect(lookupsOf("kept")).toBe(0);
    });

    // The connection closes: the entry is gone, and what lookups find meanwhile is not kept.
    subscriber.emit("close");
    await cache.authenticate("kept");
    await cache.authenticate("kept");
    expect(lookupsOf("kept")).toBe(2);
    // Reconnected: subscribed again, but kept only once Redis has answered that SUBSCRIBE.
    subscriber.emit("ready");
    expect(subscriber.subscribe).toHaveBeenCalledTimes(2);
    await cache.authenticate("kept");
    await cache.authenticate("kept");
    expect(lookupsOf("kept")).toBe(4);
    subscriber.answers.shift()?.();
    await vi.waitFor(async () => {
      await signIn("after");
      await cache.authenticate("after");
      expect(lookupsOf("after")).toBe(0);
    });
    cache.close();
  });

  test("a sign-out whose publish Redis refused fails, and is published again until Redis takes it", async () => {
    const publish = vi.fn().mockRejectedValueOnce(new Error("Connection is closed.")).mockRejectedValueOnce(new Error("Connection is closed.")).mockResolvedValue(1);
    const subscriber = Object.assign(new EventEmitter(), { subscribe: () => Promise.resolve() });
    const cache = standaloneCache({ subscriber, publisher: { publish }, republishDelayMs: 5 });
    await expect(cache.revokeUser("u1")).rejects.toThrow("Connection is closed.");
    await vi.waitFor(() => expect(publish).toHaveBeenCalledTimes(3));
    expect(publish.mock.calls.every(([channel, message]) => channel === "sessions:revoked" && message === "user:u1")).toBe(true);
    cache.close();
  });

  test("at its bound it drops the least recently used entry, not the oldest", async () => {
    const loads = vi.fn((token: string) => Promise.resolve(live({ id: token })));
    const cache = standaloneCache({ load: loads, maxEntries: 2, subscriber: Object.assign(new EventEmitter(), { subscribe: () => Promise.resolve() }) });
    await vi.waitFor(async () => {
      await cache.remember(() => Promise.resolve({ token: "probe", session: live({ id: "probe" }) }));
      await cache.authenticate("probe");
      expect(loads).not.toHaveBeenCalled();
    });
    await cache.authenticate("a");
    await cache.authenticate("b");
    await cache.authenticate("a");
    await cache.authenticate("c");
    loads.mockClear();
    await cache.authenticate("a");
    expect(loads).not.toHaveBeenCalled();
    await cache.authenticate("b");
    expect(loads).toHaveBeenCalledWith("b");
    cache.close();
  });
});
