import { and, desc, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "./database.ts";
import { apiKeys, users } from "./schema.ts";

export type ApiKeyRow = Omit<typeof apiKeys.$inferSelect, "keyHash">;

export interface ApiKeysRepository {
  create(input: { userId: string; name: string | null; keyHash: string; prefix: string }): Promise<ApiKeyRow>;
  /** Newest first; never the hash. */
  list(userId: string): Promise<ApiKeyRow[]>;
  /** False for a missing key and for another user's: callers answer 404 for both. */
  delete(userId: string, id: string): Promise<boolean>;
  /** One indexed lookup (key_hash is unique) per `/v1` request. */
  findUser(keyHash: string): Promise<{ keyId: string; user: { id: string; email: string }; lastUsedAt: Date | null } | undefined>;
  /** Records use, at most once per `unlessSince` window, so a busy key costs no write per request. */
  touch(keyId: string, now: Date, unlessSince: Date): Promise<void>;
}

const publicColumns = {
  id: apiKeys.id,
  userId: apiKeys.userId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
};

export function createApiKeysRepository(db: Db): ApiKeysRepository {
  return {
    create: async (input) => {
      const [row] = await db.insert(apiKeys).values(input).returning(publicColumns);
      if (!row) throw new Error("insert returned no row");
      return row;
    },
    list: async (userId) => db.select(publicColumns).from(apiKeys).where(eq(apiKeys.userId, userId)).orderBy(desc(apiKeys.createdAt), desc(apiKeys.id)),
    delete: async (userId, id) => (await db.delete(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId))).returning({ id: apiKeys.id })).length > 0,
    findUser: async (keyHash) => {
      const [row] = await db
        .select({ keyId: apiKeys.id, lastUsedAt: apiKeys.lastUsedAt, id: users.id, email: users.email })
        .from(apiKeys)
        .innerJoin(users, eq(users.id, apiKeys.userId))
        .where(eq(apiKeys.keyHash, keyHash))
        .limit(1);
      return row && { keyId: row.keyId, user: { id: row.id, email: row.email }, lastUsedAt: row.lastUsedAt === null ? null : new Date(row.lastUsedAt) };
    },
    touch: async (keyId, now, unlessSince) => {
      await db
        .update(apiKeys)
        .set({ lastUsedAt: sql`${now.toISOString()}::timestamptz` })
        .where(and(eq(apiKeys.id, keyId), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, unlessSince))));
    },
  };
}
