import { createSessionToken, hashToken } from "../auth/opaque-tokens.ts";
import type { PasswordHasher } from "../auth/password-hashing.ts";
import type { CachedSession } from "../auth/session-cache.ts";
import { SluiceError } from "../errors/catalog.ts";
import { callRedis } from "../errors/dependency-failure.ts";
import type { ConcurrencyGate } from "../limits/concurrency-gate.ts";
import type { LoginAttempts } from "../limits/login-attempts.ts";
import type { AuthenticatedUser, SessionsRepository } from "../storage/sessions-repository.ts";
import type { UserSettings, UsersRepository } from "../storage/users-repository.ts";
import type { Clock } from "../time/clock.ts";

/** A new session: its bearer token, and the session as a cache keeps it (src/auth/session-cache.ts). */
export interface SignedIn {
  user: AuthenticatedUser;
  token: string;
  session: CachedSession<AuthenticatedUser>;
}

export interface AccountsService {
  register(email: string, password: string): Promise<SignedIn>;
  /** Same error, and about the same time, whether the email is unknown or the password wrong. */
  login(email: string, password: string): Promise<SignedIn>;
  authenticate(token: string): Promise<AuthenticatedUser | undefined>;
  /** The lookup behind `authenticate`, with what a cache needs to keep the session: its limits and the idle-timeout bookkeeping. */
  findSession(token: string): Promise<CachedSession<AuthenticatedUser> | undefined>;
  /** True when the token was a session's, now ended. */
  logout(token: string): Promise<boolean>;
  /** Ends every session of the user, this one included. */
  logoutEverywhere(userId: string): Promise<void>;
  profile(userId: string): Promise<{ user: AuthenticatedUser; settings: UserSettings }>;
  updateSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings>;
}

/**
 * A session's last use is written at most this often, and never on the request's path: a
 * tenth of the idle timeout, between a minute and an hour (an hour for the default week). So
 * an active user costs PostgreSQL one write an hour, and a session is judged idle at most
 * this much before its timeout.
 */
export function sessionTouchIntervalMs(idleTimeoutMs: number): number {
  return Math.min(3_600_000, Math.max(60_000, Math.floor(idleTimeoutMs / 10)));
}

export function createAccountsService(dependencies: {
  users: UsersRepository;
  sessions: SessionsRepository;
  sessionTtlHours: number;
  sessionIdleTimeoutMinutes: number;
  passwords: PasswordHasher;
  /** Caps the scrypt runs in this process (LIMIT_PASSWORD_HASHES); beyond it 503 SIGN_IN_BUSY. */
  hashGate: ConcurrencyGate;
  loginAttempts: LoginAttempts;
  /** Session expiry and last use, stored in PostgreSQL. */
  clock: Pick<Clock, "wallClockMs">;
  /** Failures of work done off the request's path (the idle-timeout bookkeeping). */
  onBackgroundError: (error: unknown) => void;
}): AccountsService {
  const { users, sessions, passwords, hashGate, loginAttempts } = dependencies;
  const idleTimeoutMs = dependencies.sessionIdleTimeoutMinutes * 60_000;
  const touchIntervalMs = sessionTouchIntervalMs(idleTimeoutMs);
  /** The session as PostgreSQL has it, and as a cache re-checks it on every hit: expiry, idle timeout, the use recorded. */
  const liveSession = (user: AuthenticatedUser, sessionId: string, lastUsedAtMs: number, expiresAtMs: number): CachedSession<AuthenticatedUser> => {
    let recordedUseMs = lastUsedAtMs;
    return {
      user,
      stillValid: (nowMs) => {
        // What findUser's WHERE says, on what this process last wrote as the last use.
        if (nowMs >= expiresAtMs || nowMs - recordedUseMs >= idleTimeoutMs) return false;
        if (nowMs - recordedUseMs >= touchIntervalMs) {
          const previousUseMs = recordedUseMs;
          recordedUseMs = nowMs;
          // Deliberately not awaited: the request never waits for the bookkeeping write. If it
          // fails, this copy goes back to what PostgreSQL still has, and the next hit tries again.
          void sessions.touch(sessionId, new Date(nowMs), new Date(nowMs - touchIntervalMs)).catch((error: unknown) => {
            if (recordedUseMs === nowMs) recordedUseMs = previousUseMs;
            dependencies.onBackgroundError(error);
          });
        }
        return true;
      },
    };
  };
  const startSession = async (user: AuthenticatedUser): Promise<SignedIn> => {
    const { token, tokenHash } = createSessionToken();
    const now = dependencies.clock.wallClockMs();
    const expiresAtMs = now + dependencies.sessionTtlHours * 3600_000;
    const sessionId = await sessions.create(user.id, tokenHash, new Date(expiresAtMs), new Date(now));
    return { user, token, session: liveSession(user, sessionId, now, expiresAtMs) };
  };
  const findSession = async (token: string): Promise<CachedSession<AuthenticatedUser> | undefined> => {
    const now = dependencies.clock.wallClockMs();
    const found = await sessions.findUser(hashToken(token), new Date(now), new Date(now - idleTimeoutMs));
    if (!found) return undefined;
    const session = liveSession(found.user, found.sessionId, found.lastUsedAt.getTime(), found.expiresAt.getTime());
    // This lookup is a use: recorded when the last one is older than the touch interval.
    session.stillValid(now);
    return session;
  };
  const profileOf = async (userId: string) => {
    const row = await users.findById(userId);
    if (!row) throw new SluiceError("UNAUTHENTICATED");
    return { user: { id: row.id, email: row.email }, settings: { defaultModel: row.defaultModel, systemPrompt: row.systemPrompt } };
  };
  return {
    register: async (email, password) => {
      const passwordHash = await hashGate.run(() => passwords.hash(password));
      const row = await users.create(email, passwordHash);
      return startSession({ id: row.id, email: row.email });
    },
    login: async (email, password) => {
      await callRedis(() => loginAttempts.attempt(email));
      const row = await users.findByEmail(email);
      // One scrypt per attempt, for unknown emails too; a hash made with older parameters is
      // replaced while the password is at hand (a second scrypt, once per account and upgrade).
      const valid = await hashGate.run(async () => {
        if (!row) return passwords.verifyUnknown(password);
        const check = await passwords.verify(password, row.passwordHash);
        if (check.outdated) await users.updatePasswordHash(row.id, await passwords.hash(password));
        return check.valid;
      });
      if (!row || !valid) throw new SluiceError("INVALID_CREDENTIALS");
      await callRedis(() => loginAttempts.succeeded(email));
      return startSession({ id: row.id, email: row.email });
    },
    authenticate: async (token) => (await findSession(token))?.user,
    findSession,
    logout: async (token) => sessions.delete(hashToken(token)),
    logoutEverywhere: async (userId) => sessions.deleteAllForUser(userId),
    profile: profileOf,
    updateSettings: async (userId, settings) => {
      const row = await users.updateSettings(userId, settings);
      if (!row) throw new SluiceError("UNAUTHENTICATED");
      return { defaultModel: row.defaultModel, systemPrompt: row.systemPrompt };
    },
  };
}
