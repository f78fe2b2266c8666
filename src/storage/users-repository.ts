import { eq } from "drizzle-orm";
import { SluiceError } from "../errors/catalog.ts";
import type { Db } from "./database.ts";
import { sqlStateOf, uniqueViolation } from "./database-errors.ts";
import { users } from "./schema.ts";

export type UserRow = typeof users.$inferSelect;
export interface UserSettings {
  defaultModel: string | null;
  systemPrompt: string | null;
}

export interface UsersRepository {
  /** Throws EMAIL_TAKEN for a duplicate (case-insensitive) email. */
  create(email: string, passwordHash: string): Promise<UserRow>;
  findByEmail(email: string): Promise<UserRow | undefined>;
  findById(id: string): Promise<UserRow | undefined>;
  updateSettings(id: string, settings: Partial<UserSettings>): Promise<UserRow | undefined>;
  /** Replaces a hash made with older parameters, after a successful sign-in (src/auth/password-hashing.ts). */
  updatePasswordHash(id: string, passwordHash: string): Promise<void>;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function createUsersRepository(db: Db): UsersRepository {
  return {
    create: async (email, passwordHash) => {
      try {
        const [row] = await db.insert(users).values({ email: normaliseEmail(email), passwordHash }).returning();
        if (!row) throw new Error("insert returned no row");
        return row;
      } catch (error) {
        if (sqlStateOf(error) === uniqueViolation) throw new SluiceError("EMAIL_TAKEN");
        throw error;
      }
    },
    findByEmail: async (email) => (await db.select().from(users).where(eq(users.email, normaliseEmail(email))).limit(1))[0],
    findById: async (id) => (await db.select().from(users).where(eq(users.id, id)).limit(1))[0],
    updateSettings: async (id, settings) =>
      (await db.update(users).set({ ...settings, updatedAt: new Date() }).where(eq(users.id, id)).returning())[0],
    updatePasswordHash: async (id, passwordHash) => {
      await db.update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, id));
    },
  };
}
