import { and, eq, gt } from "drizzle-orm";
import type { Db } from "./database.ts";
import { sessions, users } from "./schema.ts";

export interface AuthenticatedUser {
  id: string;
  email: string;
}

export interface SessionsRepository {
  create(userId: string, tokenHash: string, expiresAt: Date): Promise<void>;
  /** One indexed query per authenticated request; an expired session or a deleted user finds nothing. */
  findUser(tokenHash: string, now: Date): Promise<AuthenticatedUser | undefined>;
  delete(tokenHash: string): Promise<void>;
}

export function createSessionsRepository(db: Db): SessionsRepository {
  return {
    create: async (userId, tokenHash, expiresAt) => {
      await db.insert(sessions).values({ userId, tokenHash, expiresAt });
    },
    findUser: async (tokenHash, now) =>
      (
        await db
          .select({ id: users.id, email: users.email })
          .from(sessions)
          .innerJoin(users, eq(users.id, sessions.userId))
          .where(and(eq(sessions.tokenHash, tokenHash), gt(sessions.expiresAt, now)))
          .limit(1)
      )[0],
    delete: async (tokenHash) => {
      await db.delete(sessions).where(eq(sessions.tokenHash, tokenHash));
    },
  };
}
