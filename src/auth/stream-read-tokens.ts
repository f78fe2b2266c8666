import { createHmac, createSecretKey, timingSafeEqual } from "node:crypto";

/**
 * Short-lived read tokens for `GET /api/stream/:taskId?token=…`, so a browser
 * EventSource (which cannot send headers) can open one task's stream and nothing
 * else. Format: `v1.<userId>.<expiresAtSeconds>.<hmac>`; the task id is bound
 * into the MAC rather than carried, so a token is useless for any other task.
 */
export interface StreamTokenSigner {
  sign(taskId: string, userId: string, nowMs: number): string;
  /** Returns the user id, or undefined for an invalid, foreign or expired token. */
  verify(token: string, taskId: string, nowMs: number): string | undefined;
}

export function createStreamTokenSigner(secret: string, ttlSeconds: number): StreamTokenSigner {
  // A key object made once: given the string, every MAC (two per generation start) would import the key again.
  const key = createSecretKey(Buffer.from(secret, "utf8"));
  const mac = (taskId: string, userId: string, expiresAt: number): Buffer =>
    createHmac("sha256", key).update(`stream-read:v1:${taskId}:${userId}:${expiresAt}`).digest();
  return {
    sign: (taskId, userId, nowMs) => {
      const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
      return `v1.${userId}.${expiresAt}.${mac(taskId, userId, expiresAt).toString("base64url")}`;
    },
    verify: (token, taskId, nowMs) => {
      const [version, userId, expiresText, signature] = token.split(".");
      if (version !== "v1" || !userId || !expiresText || !signature || !/^\d{1,12}$/.test(expiresText)) return undefined;
      const expiresAt = Number(expiresText);
      if (expiresAt * 1000 <= nowMs) return undefined;
      const expected = mac(taskId, userId, expiresAt);
      const actual = Buffer.from(signature, "base64url");
      return actual.length === expected.length && timingSafeEqual(actual, expected) ? userId : undefined;
    },
  };
}
