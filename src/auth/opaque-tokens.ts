import { createHash, randomBytes } from "node:crypto";
import { pooledRandomBytes } from "../random/pooled-random-bytes.ts";

/** A bearer token: 256 random bits. Only its SHA-256 is stored (sessions.token_hash). */
export function createSessionToken(): { token: string; tokenHash: string } {
  const token = `sls_${randomBytes(32).toString("base64url")}`;
  return { token, tokenHash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Unguessable task ids (128 random bits); they are also BullMQ job ids and stream ids. */
export function createTaskId(): string {
  return `task_${pooledRandomBytes(16).toString("base64url")}`;
}
