import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config/config.ts";
import { readOrCreateSecret } from "./private-files.ts";

const scratch: string[] = [];
afterEach(() => {
  for (const directory of scratch.splice(0)) rmSync(directory, { recursive: true, force: true });
});
function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), "sluice-private-"));
  scratch.push(directory);
  return directory;
}
const modeOf = (path: string): number => statSync(path).mode & 0o777;

describe("DATA_DIR and the embedded auth secret", () => {
  it("creates DATA_DIR (and its parents) 0700 and the secret 0600, and reuses the secret on the next start", () => {
    const dataDirectory = join(temporaryDirectory(), "nested", "data");
    const config = loadConfig({ DATA_DIR: dataDirectory }, "/");
    expect(modeOf(dataDirectory)).toBe(0o700);
    expect(modeOf(join(dataDirectory, ".."))).toBe(0o700);
    expect(modeOf(join(dataDirectory, "auth-secret"))).toBe(0o600);
    expect(readFileSync(join(dataDirectory, "auth-secret"), "utf8")).toBe(config.auth.secret);
    expect(loadConfig({ DATA_DIR: dataDirectory }, "/").auth.secret).toBe(config.auth.secret);
    // No temporary file is left behind.
    expect(readdirSync(dataDirectory)).toEqual(["auth-secret"]);
  });

  it("tightens an existing DATA_DIR that others could read", () => {
    const dataDirectory = join(temporaryDirectory(), "data");
    mkdirSync(dataDirectory, { mode: 0o755 });
    loadConfig({ DATA_DIR: dataDirectory }, "/");
    expect(modeOf(dataDirectory)).toBe(0o700);
  });

  it("never writes through a file or symlink planted where the secret goes: it replaces the entry", () => {
    const root = temporaryDirectory();
    const dataDirectory = join(root, "data");
    mkdirSync(dataDirectory, { mode: 0o700 });
    const elsewhere = join(root, "elsewhere");
    writeFileSync(elsewhere, "short", { mode: 0o644 });
    symlinkSync(elsewhere, join(dataDirectory, "auth-secret"));
    const config = loadConfig({ DATA_DIR: dataDirectory }, "/");
    expect(readFileSync(elsewhere, "utf8")).toBe("short");
    expect(lstatSync(join(dataDirectory, "auth-secret")).isFile()).toBe(true);
    expect(modeOf(join(dataDirectory, "auth-secret"))).toBe(0o600);
    expect(readFileSync(join(dataDirectory, "auth-secret"), "utf8")).toBe(config.auth.secret);
  });

  it("keeps the first writer's secret when another process created it in the meantime", () => {
    const file = join(temporaryDirectory(), "secret");
    const first = "a".repeat(40);
    // The "other process" writes its secret while this one is generating its own.
    const chosen = readOrCreateSecret(
      file,
      () => {
        writeFileSync(file, first, { mode: 0o600 });
        return "b".repeat(40);
      },
      (secret) => secret.length >= 32,
    );
    expect(chosen).toBe(first);
    expect(readFileSync(file, "utf8")).toBe(first);
  });
});
