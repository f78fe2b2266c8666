import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { Logger } from "pino";
import { findExecutable } from "./find-executable.ts";

export const redisInstallCommand = "apt-get install -y redis-server";

/**
 * Finds redis-server; when it is missing, says how to install it and, on
 * Debian or Ubuntu as root, installs it with apt-get (the foundation issue asks
 * for both). Throws with the install command when it cannot.
 */
export function ensureRedisServer(options: { searchPath: string | undefined; logger: Logger; isRoot: boolean }): string {
  const found = findExecutable("redis-server", options.searchPath);
  if (found) return found;
  options.logger.warn({ install: redisInstallCommand }, `redis-server was not found. Install it with: ${redisInstallCommand}`);
  if (!existsSync("/etc/debian_version") || !options.isRoot) {
    throw new Error(`redis-server is not installed. Install it with: ${redisInstallCommand} (or set REDIS_URL)`);
  }
  options.logger.warn("installing redis-server with apt-get (Debian, running as root)");
  const environment = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env: environment });
  execFileSync("apt-get", ["install", "-y", "-qq", "redis-server"], { stdio: "inherit", env: environment });
  const installed = findExecutable("redis-server", options.searchPath);
  if (!installed) throw new Error(`apt-get ran but redis-server is still missing. Install it with: ${redisInstallCommand}`);
  options.logger.info({ path: installed }, "installed redis-server with apt-get");
  return installed;
}
