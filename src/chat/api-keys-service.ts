import { randomBytes } from "node:crypto";
import { hashToken } from "../auth/opaque-tokens.ts";
import { SluiceError } from "../errors/catalog.ts";
import type { ApiKeysRepository, ApiKeyRow } from "../storage/api-keys-repository.ts";
import type { AuthenticatedUser } from "../storage/sessions-repository.ts";
import type { Clock } from "../time/clock.ts";

/** Every key starts so; a bearer token without it (a session token) is refused on `/v1` without a query. */
export const apiKeyPrefix = "sk-sluice-";
const shownPrefixChars = apiKeyPrefix.length + 6;

export interface ApiKeyView {
  id: string;
  name: string | null;
  /** The key's first characters, so a user can tell keys apart; never enough to use it. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface ApiKeysService {
  /** The key itself is returned only here; only its SHA-256 is stored. */
  create(userId: string, name: string | null): Promise<ApiKeyView & { key: string }>;
  list(userId: string): Promise<ApiKeyView[]>;
  /** NOT_FOUND for a missing key and another user's alike. */
  revoke(userId: string, id: string): Promise<void>;
  /** The key's owner, or undefined for anything that is not a live key. */
  authenticate(key: string): Promise<(AuthenticatedUser & { apiKeyId: string }) | undefined>;
}

export function createApiKeysService(dependencies: {
  apiKeys: ApiKeysRepository;
  /** A user holds at most this many keys (a soft cap against unbounded rows). */
  maxKeysPerUser: number;
  clock: Pick<Clock, "wallClockMs">;
  onBackgroundError: (error: unknown) => void;
}): ApiKeysService {
  const { apiKeys } = dependencies;
  // Last use is recorded at most once a minute per key, off the request path.
  const touchIntervalMs = 60_000;
  return {
    create: async (userId, name) => {
      if ((await apiKeys.list(userId)).length >= dependencies.maxKeysPerUser) {
        throw new SluiceError("VALIDATION_FAILED", `A user may hold at most ${dependencies.maxKeysPerUser} API keys; revoke one first.`);
      }
      const key = `${apiKeyPrefix}${randomBytes(32).toString("base64url")}`;
      const row = await apiKeys.create({ userId, name, keyHash: hashToken(key), prefix: key.slice(0, shownPrefixChars) });
      return { ...presentApiKey(row), key };
    },
    list: async (userId) => (await apiKeys.list(userId)).map(presentApiKey),
    revoke: async (userId, id) => {
      if (!(await apiKeys.delete(userId, id))) throw new SluiceError("NOT_FOUND", "No such API key.");
    },
    authenticate: async (key) => {
      if (!key.startsWith(apiKeyPrefix)) return undefined;
      const found = await apiKeys.findUser(hashToken(key));
      if (!found) return undefined;
      const now = dependencies.clock.wallClockMs();
      if (found.lastUsedAt === null || found.lastUsedAt.getTime() < now - touchIntervalMs) {
        void apiKeys.touch(found.keyId, new Date(now), new Date(now - touchIntervalMs)).catch(dependencies.onBackgroundError);
      }
      return { ...found.user, apiKeyId: found.keyId };
    },
  };
}

function presentApiKey(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    createdAt: new Date(row.createdAt).toISOString(),
    lastUsedAt: row.lastUsedAt === null ? null : new Date(row.lastUsedAt).toISOString(),
  };
}
