import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { LoadPlan, LoadResult } from "../load-client.ts";
import type { BenchServices } from "./bench-services.ts";
import { readEventLoopDelay, type EventLoopDelay } from "./event-loop-probe.ts";
import { watchProcesses, type ProcessUsage, type WatchedProcess } from "./process-stats.ts";
import { repositoryRoot } from "./spawn-server.ts";

export interface StepRecord {
  system: string;
  /** burst-running: streams already running while a burst of new generations starts (burst). */
  scenario: "sweep" | "resume" | "burst-running" | "burst" | "start-path";
  tokensPerSecond: number;
  streams: number;
  passed: boolean;
  result: LoadResult;
  processes: ProcessUsage[];
  /** pg_stat_statements calls per role during the step. */
  statements: Record<string, number>;
  topStatements: Record<string, Array<{ calls: number; query: string }>>;
  /** os.loadavg()[0] when the step ended: other work on the machine skews everything. */
  loadAverage: number;
  redisCommands: number;
  topRedisCommands: Array<[string, number]>;
  /** Redis connections by client name, sampled once every stream is open. */
  redisConnections: Record<string, number>;
  /** Event-loop delay over the step, by process name (Sluice's processes, from the preloaded probe). */
  eventLoopDelay: Record<string, EventLoopDelay>;
  /** Redis commands (INFO commandstats, scripts' inner commands included) per token received. */
  redisCommandsPerToken: number;
  /** Statements of the system's roles (not the bench's own) per stream started in the step. */
  statementsPerMessage: number | null;
  wallSeconds: number;
}

/** p99 under this, with no lost, duplicated or reordered token, counts as carrying the load. */
export const p99LimitMs = 100;

/**
 * One measured step: counters reset, the load client spawned as its own
 * process, CPU/RSS sampled, counters read back. The client's own CPU is
 * reported too, since it shares this machine's two cores.
 */
export async function runStep(options: {
  services: BenchServices;
  system: string;
  scenario: StepRecord["scenario"];
  plan: LoadPlan;
  processes: WatchedProcess[];
  onProgress: (line: string) => void;
  /** Roles whose most frequent statements are kept in the record. */
  statementsRoles?: Record<string, true>;
  /** false: the system's statements never reach the bench's PostgreSQL (embedded PGlite); reported as "-". */
  countsStatements?: boolean;
  /** False for a step that overlaps another: the counters are the other step's (default true). */
  resetCounters?: boolean;
}): Promise<StepRecord> {
  const { services, plan } = options;
  const probed = options.processes.filter((watched) => watched.loopDelayFile !== undefined);
  // Discards what the probes saw before the step (the answer to this first ask).
  await Promise.all(probed.map((watched) => readEventLoopDelay(watched.pid, watched.loopDelayFile ?? "")));
  if (options.resetCounters ?? true) await services.resetCounters();
  const startedAt = performance.now();
  const child = spawn(process.execPath, [join(repositoryRoot, "bench", "load-client.ts"), JSON.stringify(plan)], {
    cwd: repositoryRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const watcher = watchProcesses([...options.processes, { name: "load-client", pid: child.pid ?? -1 }]);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    for (const line of text.split("\n")) {
      if (line.startsWith("progress ")) options.onProgress(line.slice(9));
      else if (line.trim() !== "" && stderr.length < 20_000) stderr += `${line}\n`;
    }
  });
  let redisConnections: Record<string, number> = {};
  const sampleConnections = setTimeout(() => {
    void services.redisConnections().then((counts) => (redisConnections = counts), () => undefined);
  }, plan.rampMs + Math.min(1_500, (plan.tokenCount / plan.tokensPerSecond) * 500));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(sampleConnections);
  const processes = watcher.stop();
  const eventLoopDelay: Record<string, EventLoopDelay> = {};
  await Promise.all(
    probed.map(async (watched) => {
      const delay = await readEventLoopDelay(watched.pid, watched.loopDelayFile ?? "");
      if (delay) eventLoopDelay[watched.name] = delay;
    }),
  );
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const line = stdout.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || line === "") throw new Error(`load client failed (${String(code)}): ${stderr.slice(-2000)}`);
  const result = JSON.parse(line) as LoadResult;
  // The client has exited by now, so its usage comes from its own report.
  const client = processes.find((usage) => usage.name === "load-client");
  if (client) {
    client.cpuPercent = Math.round((result.cpuSeconds / wallSeconds) * 100);
    client.peakRssMb = result.peakRssMb;
  }
  const roles = Object.keys(options.statementsRoles ?? {});
  const topStatements = Object.fromEntries(await Promise.all(roles.map(async (role) => [role, await services.topStatements(role, 12)] as const)));
  const [statements, commands] = await Promise.all([services.statementsByRole(), services.redisCommands()]);
  const redisCommands = Object.values(commands).reduce((sum, calls) => sum + calls, 0);
  const ownStatements = Object.entries(statements).filter(([role]) => role !== "postgres").reduce((sum, [, calls]) => sum + calls, 0);
  const passed = result.failed === 0 && result.lost === 0 && result.duplicated === 0 && result.outOfOrder === 0 && result.latencyMs.p99 < p99LimitMs;
  return {
    system: options.system,
    scenario: options.scenario,
    tokensPerSecond: plan.tokensPerSecond,
    streams: plan.streams,
    passed,
    result,
    processes,
    statements,
    topStatements,
    loadAverage: Math.round((loadavg()[0] ?? 0) * 10) / 10,
    redisCommands,
    topRedisCommands: Object.entries(commands).sort((a, b) => b[1] - a[1]).slice(0, 8),
    redisConnections,
    eventLoopDelay,
    redisCommandsPerToken: Math.round((redisCommands / Math.max(1, result.tokensReceived)) * 100) / 100,
    statementsPerMessage: options.countsStatements === false ? null : Math.round((ownStatements / Math.max(1, plan.streams)) * 100) / 100,
    wallSeconds,
  };
}
