import { createHash } from "node:crypto";
import type { Clock } from "../time/clock.ts";

/** The pub/sub side the cache listens on: the process's one subscriber connection (ioredis in subscriber mode). */
export interface RevocationSubscriber {
  subscribe(...channels: string[]): Promise<unknown>;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  on(event: "ready" | "close", listener: () => void): unknown;
  off(event: "message", listener: (channel: string, message: string) => void): unknown;
  off(event: "ready" | "close", listener: () => void): unknown;
}

export interface RevocationPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

/** A live session as its store found it: the user, and the session's own limits, which a cached entry never outlives. */
export interface CachedSession<User> {
  user: User;
  /**
   * Asked on every cache hit with the wall clock: false once the session has expired or gone
   * idle, and the entry is dropped and looked up again. It may record the use (the idle
   * timeout's bookkeeping), as a lookup in the store would.
   */
  stillValid(wallClockMs: number): boolean;
}

export interface SessionCacheOptions<User extends { id: string }> {
  /** The real lookup (one indexed PostgreSQL query); its misses are not cached. */
  load: (token: string) => Promise<CachedSession<User> | undefined>;
  /** How long a found session is trusted without asking PostgreSQL again (ms); 0 turns the cache off. */
  ttlMs: number;
  maxEntries: number;
  /** `<prefix>sessions:revoked`: every API process drops what a sign-out names, at once. */
  channel: string;
  subscriber: RevocationSubscriber;
  publisher: RevocationPublisher;
  /** A sign-out whose publish Redis refused is published again this often (ms), for one TTL. */
  republishDelayMs?: number;
  /** Entry lifetimes on the monotonic clock, in this process only; the session's own limits on the wall clock. */
  clock: Pick<Clock, "monotonicMs" | "wallClockMs">;
}

export interface SessionCache<User> {
  authenticate(token: string): Promise<User | undefined>;
  /**
   * Runs a sign-in or a registration and caches the session it created, so the user's first
   * requests need no lookup; not if a revocation landed while it ran (it might name this user).
   */
  remember<Started extends { token: string; session: CachedSession<User> }>(start: () => Promise<Started>): Promise<Started>;
  /** After a sign-out: this process and every other forget the token before the call returns. */
  revokeToken(token: string): Promise<void>;
  /** After "sign out everywhere": every process forgets all of the user's sessions. */
  revokeUser(userId: string): Promise<void>;
  close(): void;
}

const tokenKey = (token: string): string => createHash("sha256").update(token).digest("base64url");

/**
 * Sessions found by the API's bearer lookup or created by its sign-ins, kept for
 * minutes so that a request costs no PostgreSQL round trip for authentication
 * (issue 13: the start path, and statements per message for a user who writes
 * every minute or two). An entry never outlives its session: its expiry and idle
 * timeout are checked on every hit (`stillValid`), which also records the use.
 * Revocation stays immediate across processes: a sign-out publishes the token's
 * hash (or `user:<id>`) and every process drops it. When the subscriber's
 * connection closes (it may miss some) the whole cache is dropped, and nothing is
 * cached until the channel is subscribed again. A publish that Redis refuses is
 * retried for one TTL. The TTL bounds what a lost notification could cost, and how
 * long a user deleted behind the API keeps a cached session.
 */
export function createSessionCache<User extends { id: string }>(options: SessionCacheOptions<User>): SessionCache<User> {
  const entries = new Map<string, { session: CachedSession<User>; expiresAt: number }>();
  // One lookup per token at a time: a client's parallel requests (a burst of starts) share it.
  const lookups = new Map<string, { session: Promise<CachedSession<User> | undefined>; revocationsAtStart: number }>();
  const enabled = options.ttlMs > 0;
  let subscribed = false;
  // Bumped by every revocation: a lookup that overlapped one does not cache what it found.
  let revocations = 0;

  const forget = (message: string): void => {
    revocations += 1;
    if (!message.startsWith("user:")) {
      entries.delete(message);
      return;
    }
    const userId = message.slice("user:".length);
    for (const [key, entry] of entries) if (entry.session.user.id === userId) entries.delete(key);
  };
  const onMessage = (channel: string, message: string): void => {
    if (channel === options.channel) forget(message);
  };
  // Whatever was revoked while the connection was down never arrives: drop everything, and cache
  // nothing until the channel is live again.
  const dropAll = (): void => {
    subscribed = false;
    revocations += 1;
    entries.clear();
  };
  // After a reconnect ioredis subscribes again without waiting for the answer; Redis answers in
  // order, so when this SUBSCRIBE's answer comes, the channel is live on this connection.
  const subscribe = (): void => {
    void options.subscriber.subscribe(options.channel).then(
      () => {
        subscribed = true;
      },
      dropAll,
    );
  };
  const onReady = (): void => {
    dropAll();
    subscribe();
  };
  const republishing = new Set<ReturnType<typeof setTimeout>>();
  /**
   * The sign-out is answered 503, but PostgreSQL has already deleted the session (and a retry of
   * "sign out everywhere" is no longer authenticated): keep telling the other processes until no
   * entry cached before the revocation can be left, one TTL.
   */
  const republish = (message: string, untilMs: number): void => {
    const timer = setTimeout(() => {
      republishing.delete(timer);
      options.publisher.publish(options.channel, message).catch(() => {
        if (options.clock.monotonicMs() < untilMs) republish(message, untilMs);
      });
    }, options.republishDelayMs ?? 1_000);
    timer.unref();
    republishing.add(timer);
  };
  if (enabled) {
    options.subscriber.on("message", onMessage);
    options.subscriber.on("ready", onReady);
    options.subscriber.on("close", dropAll);
    subscribe();
  }

  const revoke = async (message: string): Promise<void> => {
    forget(message);
    if (!enabled) return;
    try {
      await options.publisher.publish(options.channel, message);
    } catch (error) {
      republish(message, options.clock.monotonicMs() + options.ttlMs);
      throw error;
    }
  };

  const store = (key: string, session: CachedSession<User>, now: number): void => {
    // Least recently used first in the Map: drop one to stay bounded.
    if (entries.size >= options.maxEntries) entries.delete(entries.keys().next().value as string);
    entries.set(key, { session, expiresAt: now + options.ttlMs });
  };

  return {
    async authenticate(token) {
      if (!enabled) return (await options.load(token))?.user;
      const key = tokenKey(token);
      const cached = entries.get(key);
      const now = options.clock.monotonicMs();
      if (cached && cached.expiresAt > now && cached.session.stillValid(options.clock.wallClockMs())) {
        // Least recently used first in the Map: a hit moves the entry to the end.
        entries.delete(key);
        entries.set(key, cached);
        return cached.session.user;
      }
      if (cached) entries.delete(key);
      // A lookup that began before a revocation may have read the revoked session: never join it.
      const running = lookups.get(key);
      if (running && running.revocationsAtStart === revocations) return (await running.session)?.user;
      const seen = revocations;
      const lookup = { session: options.load(token), revocationsAtStart: seen };
      lookups.set(key, lookup);
      try {
        const session = await lookup.session;
        if (session && subscribed && seen === revocations) store(key, session, now);
        return session?.user;
      } finally {
        if (lookups.get(key) === lookup) lookups.delete(key);
      }
    },
    async remember(start) {
      const seen = revocations;
      const started = await start();
      if (enabled && subscribed && seen === revocations) store(tokenKey(started.token), started.session, options.clock.monotonicMs());
      return started;
    },
    revokeToken: (token) => revoke(tokenKey(token)),
    revokeUser: (userId) => revoke(`user:${userId}`),
    close() {
      options.subscriber.off("message", onMessage);
      options.subscriber.off("ready", onReady);
      options.subscriber.off("close", dropAll);
      for (const timer of republishing) clearTimeout(timer);
      entries.clear();
    },
  };
}
