import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const repositoryRoot = join(import.meta.dirname, "..", "..");

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  log(): string;
  /** SIGTERM (so --cpu-prof can write its profile), SIGKILL after `graceMs`; by PID. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnServerOptions {
  name: string;
  script: string;
  args?: string[];
  env: Record<string, string>;
  /** stdout+stderr go to this file: a pipe nobody reads would stall a busy logger. */
  logFile: string;
  execArgv?: string[];
  /** Resolves when the process is ready to serve (polls). */
  ready: (log: () => string) => Promise<boolean>;
  readyTimeoutMs?: number;
}

/** Spawns a Node process (this Node binary) and waits until `ready` says so. */
export async function spawnServer(options: SpawnServerOptions): Promise<ServerProcess> {
  const fd = openSync(options.logFile, "w");
  const child = spawn(process.execPath, [...(options.execArgv ?? []), join(repositoryRoot, options.script), ...(options.args ?? [])], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const log = (): string => readFileSync(options.logFile, "utf8");
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${options.name} exited before it was ready:\n${log().slice(-3000)}`);
    if (await options.ready(log).catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${options.name} was not ready in time:\n${log().slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    name: options.name,
    pid: child.pid ?? -1,
    child,
    log,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Readiness for HTTP servers: the URL answers 200. */
export const httpReady = (url: string) => async (): Promise<boolean> => {
  const response = await fetch(url);
  await response.arrayBuffer();
  return response.ok;
};
