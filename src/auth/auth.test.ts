import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { createSessionToken, createTaskId, hashToken } from "./opaque-tokens.ts";
import { loadConfig } from "../config/config.ts";
import { createPasswordHasher } from "./password-hashing.ts";
import { createStreamTokenSigner } from "./stream-read-tokens.ts";

const cheap = { cost: 2 ** 10, blockSize: 8, parallelization: 1 };

describe("password hashing", () => {
  it("uses OWASP's minimum for scrypt in production (N=2^17, r=8, p=1), which fits in its maxmem", async () => {
    const workingDirectory = mkdtempSync(join(tmpdir(), "sluice-hashing-"));
    onTestFinished(() => rmSync(workingDirectory, { recursive: true, force: true }));
    const production = loadConfig({}, workingDirectory).auth.passwordHashing;
    expect(production).toEqual({ cost: 2 ** 17, blockSize: 8, parallelization: 1 });
    // Only the explicit test setting makes hashing cheaper.
    expect(loadConfig({ TEST_ONLY_WEAK_PASSWORD_HASHING: "true" }, workingDirectory).auth.passwordHashing.cost).toBeLessThan(2 ** 17);
    const hasher = createPasswordHasher(production);
    const stored = await hasher.hash("correct horse");
    expect(stored).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(await hasher.verify("correct horse", stored)).toEqual({ valid: true, outdated: false });
  });

  it("verifies the right password and rejects a wrong or malformed one", async () => {
    const hasher = createPasswordHasher(cheap);
    const stored = await hasher.hash("correct horse");
    expect(stored).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect((await hasher.verify("correct horse", stored)).valid).toBe(true);
    expect((await hasher.verify("correct horsE", stored)).valid).toBe(false);
    expect((await hasher.verify("correct horse", "scrypt$1$2")).valid).toBe(false);
    // Absurd stored parameters are refused, not run (2^30 would need 128 GiB).
    expect((await hasher.verify("correct horse", stored.replace("$1024$", "$1073741824$"))).valid).toBe(false);
    expect(await hasher.hash("correct horse")).not.toBe(stored); // salted
    expect(await hasher.verifyUnknown("correct horse")).toBe(false);
  });

  it("flags a hash made with other parameters as outdated once the password is right", async () => {
    const old = await createPasswordHasher(cheap).hash("correct horse");
    const current = createPasswordHasher({ ...cheap, cost: 2 ** 11 });
    expect(await current.verify("correct horse", old)).toEqual({ valid: true, outdated: true });
    expect(await current.verify("wrong horse", old)).toEqual({ valid: false, outdated: false });
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
