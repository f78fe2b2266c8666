import { describe, expect, it } from "vitest";
import { createSessionToken, createTaskId, hashToken } from "./opaque-tokens.ts";
import { hashPassword, verifyPassword } from "./password-hashing.ts";
import { createStreamTokenSigner } from "./stream-read-tokens.ts";

describe("password hashing", () => {
  it("verifies the right password and rejects a wrong or malformed one", async () => {
    const stored = await hashPassword("correct horse");
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword("correct horse", stored)).toBe(true);
    expect(await verifyPassword("correct horsE", stored)).toBe(false);
    expect(await verifyPassword("correct horse", "scrypt$1$2")).toBe(false);
    expect(await hashPassword("correct horse")).not.toBe(stored); // salted
  });
});

describe("tokens", () => {
  it("session tokens are random and stored only as hashes", () => {
    const a = createSessionToken();
    const b = createSessionToken();
    expect(a.token).not.toBe(b.token);
    expect(a.tokenHash).toBe(hashToken(a.token));
    expect(a.tokenHash).not.toContain(a.token);
    expect(createTaskId()).toMatch(/^task_[A-Za-z0-9_-]{22}$/);
  });

  it("stream read tokens are scoped to one task, one user, and expire", () => {
    const signer = createStreamTokenSigner("s".repeat(32), 60);
    const now = 1_800_000_000_000;
    const token = signer.sign("task_a", "user-1", now);
    expect(signer.verify(token, "task_a", now)).toBe("user-1");
    expect(signer.verify(token, "task_b", now)).toBeUndefined();
    expect(signer.verify(token, "task_a", now + 61_000)).toBeUndefined();
    expect(signer.verify(token.replace("user-1", "user-2"), "task_a", now)).toBeUndefined();
    expect(createStreamTokenSigner("t".repeat(32), 60).verify(token, "task_a", now)).toBeUndefined();
    expect(signer.verify("garbage", "task_a", now)).toBeUndefined();
  });
});
