import { and, eq, gt, lte, sql } from "drizzle-orm";
import type { Db } from "./database.ts";
import { selectRows } from "./database.ts";
import { sessions, users } from "./schema.ts";

export interface AuthenticatedUser {
  id: string;
  email: string;
}

/** A live session's user, with what the idle-timeout bookkeeping needs. */
export interface SessionUser {
  user: AuthenticatedUser;
  sessionId: string;
  lastUsedAt: Date;
  expiresAt: Date;
}

export interface SessionsRepository {
  /** `now` starts the idle clock, on the same clock as `findUser` and `touch`; returns the session's id. */
  create(userId: string, tokenHash: string, expiresAt: Date, now: Date): Promise<string>;
  /**
   * One indexed query per authenticated request (token_hash is unique); a session past its
   * expiry, idle since before `idleSince`, or of a deleted user finds nothing. It never writes.
   */
  findUser(tokenHash: string, now: Date, idleSince: Date): Promise<SessionUser | undefined>;
  /** Records use for the idle timeout; a no-op when another request already did since `unlessSince`. */
  touch(sessionId: string, now: Date, unlessSince: Date): Promise<void>;
  /** True when a session was deleted. */
  delete(tokenHash: string): Promise<boolean>;
  /** Sign out everywhere: every session of the user. */
  deleteAllForUser(userId: string): Promise<void>;
  /**
   * Deletes up to `batchSize` sessions that expired before `now` or sat idle since before
   * `idleSince`; returns how many. Bounded, SKIP LOCKED (several API processes purge).
   */
  purgeExpired(now: Date, idleSince: Date, batchSize: number): Promise<number>;
}

export function createSessionsRepository(db: Db): SessionsRepository {
  return {
    create: async (userId, tokenHash, expiresAt, now) => {
      const [row] = await db.insert(sessions).values({ userId, tokenHash, expiresAt, lastUsedAt: now }).returning({ id: sessions.id });
      if (!row) throw new Error("the session insert returned no row");
      return row.id;
    },
    findUser: async (tokenHash, now, idleSince) => {
      const row = (
        await db
          .select({ id: users.id, email: users.email, sessionId: sessions.id, lastUsedAt: sessions.lastUsedAt, expiresAt: sessions.expiresAt })
          .from(sessions)
          .innerJoin(users, eq(users.id, sessions.userId))
          .where(and(eq(sessions.tokenHash, tokenHash), gt(sessions.expiresAt, now), gt(sessions.lastUsedAt, idleSince)))
          .limit(1)
      )[0];
      return row && { user: { id: row.id, email: row.email }, sessionId: row.sessionId, lastUsedAt: new Date(row.lastUsedAt), expiresAt: new Date(row.expiresAt) };
    },
    touch: async (sessionId, now, unlessSince) => {
      await db.update(sessions).set({ lastUsedAt: now }).where(and(eq(sessions.id, sessionId), lte(sessions.lastUsedAt, unlessSince)));
    },
    delete: async (tokenHash) => {
      const deleted = await db.delete(sessions).where(eq(sessions.tokenHash, tokenHash)).returning({ id: sessions.id });
      return deleted.length > 0;
    },
    deleteAllForUser: async (userId) => {
      await db.delete(sessions).where(eq(sessions.userId, userId));
    },
    purgeExpired: async (now, idleSince, batchSize) => {
      const rows = await selectRows<{ count: number }>(db, sql`
        with doomed as (
          select id from ${sessions}
          where expires_at <= ${now.toISOString()}::timestamptz or last_used_at <= ${idleSince.toISOString()}::timestamptz
          limit ${batchSize} for update skip locked
        ), deleted as (
          delete from ${sessions} s using doomed where s.id = doomed.id returning 1
        )
        select count(*)::int as count from deleted`);
      return rows[0]?.count ?? 0;
    },
  };
}
