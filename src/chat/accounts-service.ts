import { createSessionToken, hashToken } from "../auth/opaque-tokens.ts";
import { dummyPasswordHash, hashPassword, verifyPassword } from "../auth/password-hashing.ts";
import { SluiceError } from "../errors/catalog.ts";
import type { AuthenticatedUser, SessionsRepository } from "../storage/sessions-repository.ts";
import type { UserSettings, UsersRepository } from "../storage/users-repository.ts";

export interface AccountsService {
  register(email: string, password: string): Promise<{ user: AuthenticatedUser; token: string }>;
  /** Same error, and about the same time, whether the email is unknown or the password wrong. */
  login(email: string, password: string): Promise<{ user: AuthenticatedUser; token: string }>;
  authenticate(token: string): Promise<AuthenticatedUser | undefined>;
  logout(token: string): Promise<void>;
  profile(userId: string): Promise<{ user: AuthenticatedUser; settings: UserSettings }>;
  updateSettings(userId: string, settings: Partial<UserSettings>): Promise<UserSettings>;
}

export function createAccountsService(dependencies: {
  users: UsersRepository;
  sessions: SessionsRepository;
  sessionTtlHours: number;
  now: () => number;
}): AccountsService {
  const { users, sessions } = dependencies;
  const startSession = async (user: AuthenticatedUser): Promise<{ user: AuthenticatedUser; token: string }> => {
    const { token, tokenHash } = createSessionToken();
    await sessions.create(user.id, tokenHash, new Date(dependencies.now() + dependencies.sessionTtlHours * 3600_000));
    return { user, token };
  };
  const profileOf = async (userId: string) => {
    const row = await users.findById(userId);
    if (!row) throw new SluiceError("UNAUTHENTICATED");
    return { user: { id: row.id, email: row.email }, settings: { defaultModel: row.defaultModel, systemPrompt: row.systemPrompt } };
  };
  return {
    register: async (email, password) => {
      const row = await users.create(email, await hashPassword(password));
      return startSession({ id: row.id, email: row.email });
    },
    login: async (email, password) => {
      const row = await users.findByEmail(email);
      const valid = await verifyPassword(password, row?.passwordHash ?? (await dummyPasswordHash));
      if (!row || !valid) throw new SluiceError("INVALID_CREDENTIALS");
      return startSession({ id: row.id, email: row.email });
    },
    authenticate: async (token) => sessions.findUser(hashToken(token), new Date(dependencies.now())),
    logout: async (token) => sessions.delete(hashToken(token)),
    profile: profileOf,
    updateSettings: async (userId, settings) => {
      const row = await users.updateSettings(userId, settings);
      if (!row) throw new SluiceError("UNAUTHENTICATED");
      return { defaultModel: row.defaultModel, systemPrompt: row.systemPrompt };
    },
  };
}
