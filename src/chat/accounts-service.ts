import { createSessionToken, hashToken } from "../auth/opaque-tokens.ts";
import type { PasswordHasher } from "../auth/password-hashing.ts";
import { SluiceError } from "../errors/catalog.ts";
import { callRedis } from "../errors/dependency-failure.ts";
import type { ConcurrencyGate } from "../limits/concurrency-gate.ts";
import type { LoginAttempts } from "../limits/login-attempts.ts";
import type { AuthenticatedUser, SessionsRepository } from "../storage/sessions-repository.ts";
import type { UserSettings, UsersRepository } from "../storage/users-repository.ts";
import type { Clock } from "../time/clock.ts";

export interface AccountsService {
  register(email: string, password: string): Promise<{ user: AuthenticatedUser; token: string }>;
  /** Same error, and about the same time, whether the email is unknown or the password wrong. */
  login(email: string, password: string): Promise<{ user: AuthenticatedUser; token: string }>;
  authenticate(token: string): Promise<AuthenticatedUser | undefined>;
  logout(token: string): Promise<void>;
  /** Ends every session of the user, this one included. */
  logoutEverywhere(userId: string): Promise<void>;
  profile(userId: string): Promise<{ user: AuthenticatedUser; settings: UserSettings }>;
  updateSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings>;
}

/** A session's last use is written at most this often, and never on the request's path. */
export const sessionTouchIntervalMs = 60_000;

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
  const startSession = async (user: AuthenticatedUser): Promise<{ user: AuthenticatedUser; token: string }> => {
    const { token, tokenHash } = createSessionToken();
    const now = dependencies.clock.wallClockMs();
    await sessions.create(user.id, tokenHash, new Date(now + dependencies.sessionTtlHours * 3600_000), new Date(now));
    return { user, token };
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
    authenticate: async (token) => {
      const now = dependencies.clock.wallClockMs();
      const found = await sessions.findUser(hashToken(token), new Date(now), new Date(now - idleTimeoutMs));
      if (!found) return undefined;
      if (now - found.lastUsedAt.getTime() >= sessionTouchIntervalMs) {
        // Deliberately not awaited: the request never waits for the bookkeeping write.
        void sessions.touch(found.sessionId, new Date(now), new Date(now - sessionTouchIntervalMs)).catch(dependencies.onBackgroundError);
      }
      return found.user;
    },
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
