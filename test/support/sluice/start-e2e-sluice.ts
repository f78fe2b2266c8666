import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { inject } from "vitest";
import { findFreePort } from "../../../src/embedded/free-port.ts";
import { createTestDatabase } from "../servers/test-database.ts";
import { uniqueKeyPrefix } from "../servers/redis.ts";
import { weakPasswordHashing } from "./environment.ts";

const repositoryRoot = join(import.meta.dirname, "..", "..", "..");
const readyDeadlineMs = 45_000;

export interface RunningSluice {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartSluiceOptions {
  tokensPerSecond: number;
  tokenCount: number;
}

/**
 * Starts the real Sluice (`node src/main/cli.ts start`: API + worker in one process)
 * on its own database and Redis key prefix, with the simulated model, and waits
 * for GET /readyz to answer 200.
 *
 * Set SLUICE_E2E_BASE_URL to point the browser tests at a Sluice you started yourself.
 */
export async function startSluice(options: StartSluiceOptions): Promise<RunningSluice> {
  const external = process.env.SLUICE_E2E_BASE_URL;
  if (external) return { url: external.replace(/\/$/, ""), output: () => "", stop: () => Promise.resolve() };

  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(repositoryRoot, "src", "main", "cli.ts"), "start"], {
    cwd: repositoryRoot,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: await createTestDatabase("e2e"),
      REDIS_URL: inject("redisUrl"),
      REDIS_KEY_PREFIX: uniqueKeyPrefix("e2e"),
      LLM_PROVIDER: "simulated",
      SIMULATED_TOKENS_PER_SECOND: String(options.tokensPerSecond),
      SIMULATED_TOKEN_COUNT: String(options.tokenCount),
      LOG_LEVEL: "warn",
      ...weakPasswordHashing,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const sluice: RunningSluice = { url, output: () => output, stop: () => stopChild(child) };
  try {
    await waitUntilReady(url, child, () => output);
  } catch (error) {
    await sluice.stop();
    throw error;
  }
  return sluice;
}

async function waitUntilReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + readyDeadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sluice exited with ${child.exitCode} before it was ready:\n${output()}`);
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`sluice was not ready within ${readyDeadlineMs} ms:\n${output()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
