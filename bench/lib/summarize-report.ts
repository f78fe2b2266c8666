import type { IdleRecord } from "./idle-connections.ts";
import type { StepRecord } from "./run-step.ts";

export interface BenchReport {
  startedAt: string;
  durationSeconds: number;
  machine: { loadAverageAtEnd: number; cpus: number; cpuModel: string; memoryGb: number; node: string };
  settings: { mode: string; systems: string[]; rates: number[]; steps: number[]; streamSeconds: number; rampMs: number };
  steps: StepRecord[];
  idle: IdleRecord[];
}

export interface SystemSummary {
  system: string;
  /** The load every system is compared at: the first sweep step at the first rate. */
  reference: StepRecord | undefined;
  capacity: Record<number, { streams: number; ceiling: boolean; belowFirstStep: boolean }>;
  resume: StepRecord | undefined;
  idle: IdleRecord | undefined;
  /** Statements per generated message by side (`start`: API and worker in one process), at the reference step. */
  statementsPerMessage: { api: number; worker: number; start: number; total: number } | undefined;
  statementsPerSecond: number | undefined;
  redisCommandsPerToken: number | undefined;
  /** Redis connections at the reference step and at the largest step run. */
  redisConnections: { reference: number; largest: number; largestStreams: number } | undefined;
  serverCpuPercent: number | undefined;
  serverRssMb: number | undefined;
}

const infrastructure = new Set(["redis-server", "postgres", "load-client"]);
const roleSide: Record<string, "api" | "worker" | "start"> = { sluice_api: "api", sluice_worker: "worker", sluice_start: "start", bench_polling: "api" };

/** Processes that are the system itself: not Redis, PostgreSQL or the load client, nor the fake provider a Sluice system reads from. */
export const isServerProcess = (system: string, processName: string): boolean =>
  !infrastructure.has(processName) && (processName !== "openai-provider" || system === "provider-direct");

export function summarizeSystem(report: BenchReport, system: string): SystemSummary {
  const sweep = report.steps.filter((step) => step.system === system && step.scenario === "sweep");
  const firstRate = report.settings.rates[0];
  const reference = sweep.find((step) => step.tokensPerSecond === firstRate && step.streams === report.settings.steps[0]);
  const capacity: SystemSummary["capacity"] = {};
  for (const rate of report.settings.rates) {
    const atRate = sweep.filter((step) => step.tokensPerSecond === rate);
    const passed = atRate.filter((step) => step.passed).map((step) => step.streams);
    const best = passed.length === 0 ? 0 : Math.max(...passed);
    capacity[rate] = { streams: best, ceiling: atRate.length > 0 && atRate.every((step) => step.passed), belowFirstStep: passed.length === 0 };
  }
  let statementsPerMessage: SystemSummary["statementsPerMessage"];
  let statementsPerSecond: number | undefined;
  let redisCommandsPerToken: number | undefined;
  let serverCpuPercent: number | undefined;
  let serverRssMb: number | undefined;
  if (reference) {
    const sides = { api: 0, worker: 0, start: 0 };
    for (const [role, calls] of Object.entries(reference.statements)) {
      const side = roleSide[role];
      if (side) sides[side] += calls;
    }
    const messages = reference.streams;
    const total = sides.api + sides.worker + sides.start;
    if (reference.statementsPerMessage !== null) statementsPerMessage = { api: round(sides.api / messages), worker: round(sides.worker / messages), start: round(sides.start / messages), total: round(total / messages) };
    if (reference.statementsPerMessage !== null) statementsPerSecond = Math.round(total / reference.wallSeconds);
    redisCommandsPerToken = round(reference.redisCommands / Math.max(1, reference.result.tokensReceived));
    const servers = reference.processes.filter((usage) => isServerProcess(system, usage.name));
    serverCpuPercent = servers.reduce((sum, usage) => sum + usage.cpuPercent, 0);
    serverRssMb = servers.reduce((sum, usage) => sum + usage.peakRssMb, 0);
  }
  const connectionsOf = (step: StepRecord): number => Object.values(step.redisConnections).reduce((sum, count) => sum + count, 0);
  const largest = sweep.reduce<StepRecord | undefined>((best, step) => (best === undefined || step.streams > best.streams ? step : best), undefined);
  return {
    system,
    reference,
    capacity,
    resume: report.steps.find((step) => step.system === system && step.scenario === "resume"),
    idle: report.idle.find((record) => record.system === system),
    statementsPerMessage,
    statementsPerSecond,
    redisCommandsPerToken,
    redisConnections: reference && largest ? { reference: connectionsOf(reference), largest: connectionsOf(largest), largestStreams: largest.streams } : undefined,
    serverCpuPercent,
    serverRssMb,
  };
}

export const round = (value: number): number => Math.round(value * 100) / 100;
