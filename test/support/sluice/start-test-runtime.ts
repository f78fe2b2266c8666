import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { loadConfig } from "../../../src/config/config.ts";
import { createLogger } from "../../../src/logging/create-logger.ts";
import { startRuntime, type Role, type Runtime } from "../../../src/main/runtime.ts";
import { createTestDatabase } from "../servers/test-database.ts";
import { uniqueKeyPrefix } from "../servers/redis.ts";
import { weakPasswordHashing } from "./environment.ts";

/** What cooperating processes must share: one database, one Redis and key prefix, one signing secret. */
export interface SharedEnvironment {
  DATABASE_URL: string;
  REDIS_URL: string;
  REDIS_KEY_PREFIX: string;
  AUTH_SECRET: string;
}

export async function sharedEnvironment(label: string): Promise<SharedEnvironment> {
  return {
    DATABASE_URL: await createTestDatabase(label),
    REDIS_URL: inject("redisUrl"),
    REDIS_KEY_PREFIX: uniqueKeyPrefix(label),
    AUTH_SECRET: randomBytes(32).toString("base64url"),
  };
}

/** Limits generous enough that fuzzing and many users from one IP are not rate limited. */
export const relaxedLimits: Record<string, string> = {
  LIMIT_AUTH_PER_MINUTE: "100000",
  LIMIT_MESSAGES_PER_MINUTE: "100000",
  LIMIT_GENERATIONS_PER_USER: "50",
  LIMIT_OPEN_STREAMS_PER_USER: "50",
  LIMIT_LOGIN_ATTEMPTS_PER_ACCOUNT: "100000",
  LIMIT_PASSWORD_HASH_QUEUE: "100000",
};

export interface TestRuntime {
  readonly url: string;
  readonly runtime: Runtime;
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts Sluice in this process (`startRuntime`, port 0) on its own database and
 * key prefix unless `env` names shared ones. Much faster than spawning a process;
 * use `startSluiceProcess` when the test needs to kill or separate processes.
 */
export async function startTestRuntime(label: string, env: Record<string, string> = {}, role: Role = "start"): Promise<TestRuntime> {
  const dataDirectory = mkdtempSync(join(tmpdir(), `sluice-chat-${label}-`));
  const fullEnv: Record<string, string> = {
    ...(await sharedEnvironment(label)),
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDirectory,
    LOG_LEVEL: "silent",
    ENABLE_WEB_UI: "false",
    LLM_PROVIDER: "simulated",
    SIMULATED_TOKENS_PER_SECOND: "2000",
    SIMULATED_TOKEN_COUNT: "30",
    STREAM_STALL_TIMEOUT_MS: "500",
    ...weakPasswordHashing,
    ...relaxedLimits,
    ...env,
  };
  const config = loadConfig(fullEnv, dataDirectory);
  const runtime = await startRuntime(role, config, createLogger({ level: process.env.SLUICE_TEST_LOG_LEVEL ?? "silent" }), process.env.PATH);
  return {
    url: runtime.address ?? "",
    runtime,
    env: fullEnv,
    stop: async () => {
      await runtime.stop();
      rmSync(dataDirectory, { recursive: true, force: true });
    },
  };
}
