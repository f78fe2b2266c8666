import { randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Creates `directory` (and missing parents) with mode 0700, and tightens it to
 * 0700 when it exists with group or other access and belongs to this user: the
 * data directory holds the auth secret, the Redis password and the embedded
 * databases, so nobody else on the machine may read or list it.
 */
export function ensurePrivateDirectory(directory: string): void {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const stats = statSync(directory);
  if ((stats.mode & 0o077) !== 0 && stats.uid === process.getuid?.()) chmodSync(directory, 0o700);
}

/**
 * The secret kept in `file`, created on first use: `create()` is written to a
 * fresh temporary file (O_EXCL, mode 0600) and then hard-linked into place, so
 * the secret appears whole or not at all, an existing file (or a symlink planted
 * there) is never written through, and when two processes start at once both
 * end up with the one that was linked first. A file holding an invalid secret
 * (`isValid` false, e.g. truncated) is replaced by rename.
 * @example const secret = readOrCreateSecret(join(dataDirectory, "auth-secret"), () => randomBytes(32).toString("base64url"), (s) => s.length >= 32);
 */
export function readOrCreateSecret(file: string, create: () => string, isValid: (secret: string) => boolean): string {
  const existing = readSecret(file);
  if (existing !== undefined && isValid(existing)) return existing;
  ensurePrivateDirectory(dirname(file));
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const secret = create();
  writeFileSync(temporary, secret, { mode: 0o600, flag: "wx" });
  try {
    if (existing !== undefined) {
      renameSync(temporary, file);
      return secret;
    }
    try {
      linkSync(temporary, file);
      return secret;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      // Another process created it between our read and our link: theirs wins.
      const winner = readSecret(file);
      if (winner !== undefined && isValid(winner)) return winner;
      renameSync(temporary, file);
      return secret;
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // already renamed into place
    }
  }
}

function readSecret(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
