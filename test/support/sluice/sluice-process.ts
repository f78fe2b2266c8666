import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject, vi } from "vitest";
import { findFreePort } from "../../../src/embedded/free-port.ts";
import { recordLeftover } from "../servers/leftovers.ts";
import { processReadyTimeoutMs, weakPasswordHashing } from "./environment.ts";

const repositoryRoot = join(import.meta.dirname, "..", "..", "..");

export interface SluiceProcess {
  /** `http://127.0.0.1:<port>` for api/start roles, undefined for a worker. */
  readonly url: string | undefined;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything the process wrote (JSON log lines), for assertions and failure messages. */
  output(): string;
  /** Calls `listener` after each chunk the process writes; returns the unsubscribe (see `whenOutput`). */
  onOutput(listener: () => void): () => void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves after the exit and the last chunk of output. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
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
 * when it logs "worker started". Defaults: loopback, info logs (kept in memory), the
 * shared test Redis, and a temporary DATA_DIR of its own, removed when it exits (never
 * ./.sluice in the repository). Each caller gives its own DATABASE_URL and REDIS_KEY_PREFIX
 * (sluiceEnvironment); most tests start processes through startSluice.
 */
export async function startSluiceProcess(options: SluiceProcessOptions): Promise<SluiceProcess> {
  const port = options.role === "worker" ? 0 : await findFreePort();
  const dataDirectory = mkdtempSync(join(tmpdir(), `sluice-${options.role}-`));
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
    DATA_DIR: dataDirectory,
  };
  const child = spawn(process.execPath, [join(repositoryRoot, "src", "main", "cli.ts"), options.role], {
    cwd: repositoryRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  recordLeftover({ pid: child.pid, directory: dataDirectory });
  let output = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const listener of [...listeners]) listener();
  };
  const onOutput = (listener: () => void): (() => void) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  // "close", not "exit": it comes after the last chunk of output.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("close", (code, signal) => {
      rmSync(dataDirectory, { recursive: true, force: true });
      resolve({ code, signal });
    });
  });
  const url = options.role === "worker" ? undefined : `http://127.0.0.1:${port}`;
  const processHandle: SluiceProcess = {
    url,
    pid: child.pid ?? -1,
    child,
    output: () => output,
    onOutput,
    exited,
    closed,
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
  const deadline = Date.now() + (options.readyTimeoutMs ?? processReadyTimeoutMs);
  const failEarly = exited.then(({ code, signal }) => {
    throw new Error(`sluice ${options.role} exited before it was ready (${String(code ?? signal)}):\n${output}`);
  });
  if (url) {
    await Promise.race([waitForReady(url, child, deadline - Date.now()), failEarly]);
    if (child.exitCode !== null || child.signalCode !== null) await failEarly;
  } else {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        whenOutput([processHandle], () => output.includes('"msg":"worker started"') || undefined, "the worker started"),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`worker not started:\n${output}`)), deadline - Date.now());
        }),
        failEarly,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
  void failEarly.catch(() => undefined);
  return processHandle;
}

/** Readiness has no event to wait on, so this polls /readyz (until the child exits: `failEarly` reports that). */
async function waitForReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  await vi.waitFor(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const response = await fetch(`${url}/readyz`);
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`${url}/readyz answered ${response.status}`);
    },
    { timeout: timeoutMs, interval: 100 },
  );
}

/**
 * Resolves with `probe()`'s first defined value, tried now and again whenever
 * any of `processes` writes output (no polling, no deadline: the test's own
 * timeout bounds it). Rejects once every one of them has exited without it.
 *
 * @example const worker = await whenOutput(workers, () => workers.find((w) => w.output().includes(taskId)), "the worker running it");
 */
export function whenOutput<T>(processes: readonly SluiceProcess[], probe: () => T | undefined, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const unsubscribes: Array<() => void> = [];
    let settled = false;
    const settle = (): boolean => {
      const value = probe();
      if (value === undefined) return false;
      settled = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      resolve(value);
      return true;
    };
    if (settle()) return;
    for (const process of processes) unsubscribes.push(process.onOutput(() => void (settled || settle())));
    void Promise.all(processes.map((process) => process.closed)).then((exits) => {
      if (settled || settle()) return;
      for (const unsubscribe of unsubscribes) unsubscribe();
      const outputs = processes.map((process, index) => `--- pid ${process.pid} (${String(exits[index]?.code ?? exits[index]?.signal)})\n${process.output().slice(-2_000)}`);
      reject(new Error(`every process exited before ${what}:\n${outputs.join("\n")}`));
    });
  });
}
