import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { inject } from "vitest";
import { findFreePort } from "../../src/embedded/free-port.ts";
import { weakPasswordHashing } from "./test-env.ts";

const repositoryRoot = join(import.meta.dirname, "..", "..");

export interface SluiceProcess {
  /** `http://127.0.0.1:<port>` for api/start roles, undefined for a worker. */
  readonly url: string | undefined;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything the process wrote (JSON log lines), for assertions and failure messages. */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<void>;
}

export interface SluiceProcessOptions {
  role: "start" | "api" | "worker";
  /** Shared by cooperating processes: DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX, AUTH_SECRET, LLM_* ... */
  env: Record<string, string>;
  readyTimeoutMs?: number;
}

/**
 * Spawns the real `sluice <role>` as a separate process (Node 24 from this test's
 * own process.execPath). API roles are ready when /readyz answers 200; a worker
 * when it logs "worker started". Defaults: loopback, silent except warnings, the
 * shared test Redis. Each caller gives its own DATABASE_URL and REDIS_KEY_PREFIX.
 */
export async function startSluiceProcess(options: SluiceProcessOptions): Promise<SluiceProcess> {
  const port = options.role === "worker" ? 0 : await findFreePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    HOST: "127.0.0.1",
    PORT: String(port),
    REDIS_URL: inject("redisUrl"),
    LOG_LEVEL: "info",
    ENABLE_WEB_UI: "false",
    ...weakPasswordHashing,
    ...options.env,
  };
  const child = spawn(process.execPath, [join(repositoryRoot, "src", "main", "cli.ts"), options.role], {
    cwd: repositoryRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let onOutput: (() => void) | undefined;
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
    onOutput?.();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const url = options.role === "worker" ? undefined : `http://127.0.0.1:${port}`;
  const processHandle: SluiceProcess = {
    url,
    pid: child.pid ?? -1,
    child,
    output: () => output,
    exited,
    kill: (signal = "SIGKILL") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 45_000);
  const failEarly = exited.then(({ code, signal }) => {
    throw new Error(`sluice ${options.role} exited before it was ready (${String(code ?? signal)}):\n${output}`);
  });
  if (url) {
    await Promise.race([waitForReady(url, deadline), failEarly]);
  } else {
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (output.includes('"msg":"worker started"')) resolve();
          else if (Date.now() > deadline) reject(new Error(`worker not started:\n${output}`));
        };
        onOutput = check;
        check();
      }),
      failEarly,
    ]);
    onOutput = undefined;
  }
  void failEarly.catch(() => undefined);
  return processHandle;
}

/** Readiness has no event to wait on, so this polls /readyz with a deadline. */
async function waitForReady(url: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/readyz`);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url}/readyz did not answer 200 in time`);
}
