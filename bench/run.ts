// `npm run bench [-- --quick] [--profile] [--systems=sluice,sluice-openai-start,...]`
// Starts a private Redis and PostgreSQL, then each system in turn (Sluice with
// its simulated provider as separate api and worker processes; Sluice reading
// an OpenAI-compatible server process through the openai SDK, as one `start`
// process and as api + worker; that server read directly; the four baselines
// as their own processes), sweeps concurrent streams at 20 and 50 tokens/s
// with a load client in its own process, measures resume and idle
// connections, and writes bench/results/<stamp>.json, .svg and the table
// (BENCHMARKS.md: method).
import { cpus, loadavg, totalmem } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { databaseRoles, startBenchServices, type BenchServices } from "./lib/bench-services.ts";
import { idleConnections, type IdleRecord } from "./lib/idle-connections.ts";
import { runStep, type StepRecord } from "./lib/run-step.ts";
import { createSystem, isSluice, systemLabels, systemNames, type PreparedSystem, type SystemName } from "./lib/systems.ts";
import { cpuPerProviderCpu, formatUsage, waitForQuiet, type WatchedProcess } from "./lib/process-stats.ts";
import { renderChart } from "./lib/render-chart.ts";
import { renderTable } from "./lib/render-table.ts";
import { repositoryRoot } from "./lib/spawn-server.ts";

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => argv.find((arg) => arg.startsWith(`--${name}=`))?.split("=")[1];
const quick = argv.includes("--quick");
const profile = argv.includes("--profile");

/** Everything that sizes a run; quick mode keeps the whole run under three minutes on 2 cores. */
const settings = {
  mode: quick ? "quick" : "full",
  systems: (option("systems")?.split(",") ?? [...systemNames]) as SystemName[],
  rates: option("rates")?.split(",").map(Number) ?? [20, 50],
  steps: option("steps")?.split(",").map(Number) ?? (quick ? [50, 250] : [25, 50, 100, 250, 500, 1000, 1500, 2000, 3000, 4000]),
  /** Seconds each stream lasts: tokenCount = rate x this. */
  streamSeconds: Number(option("stream-seconds") ?? (quick ? 3 : 10)),
  rampMs: Number(option("ramp-ms") ?? (quick ? 1000 : 3000)),
  resumeStreams: quick ? 30 : 200,
  resumeAfterTokens: 10,
  /** Away for 5 tokens at 20/s: the resume replays what was missed, then goes live. */
  resumeGapMs: 250,
  idleConnections: Number(option("idle") ?? (quick ? 300 : 2000)),
  /** An unmeasured step before each system's sweep (`--warmup=0` turns it off). */
  warmupStreams: Number(option("warmup") ?? 20),
  logLevel: option("log-level") ?? "info",
  /**
   * Generation starts per second in the burst scenario (issue 13: "500 generations started within
   * one second must not freeze the streams already running"); 0 = no burst. Sluice systems only.
   */
  burstStartsPerSecond: Number(option("burst") ?? (quick ? 0 : 500)),
  burstSeconds: Number(option("burst-seconds") ?? 5),
  /** Streams already running (20 tokens/s) while the burst starts. */
  burstRunningStreams: Number(option("burst-running") ?? 100),
  /** --redis=unix: Sluice's processes reach Redis over its unix socket instead of TCP loopback. */
  redisSocket: option("redis") === "unix",
  providerHttp2: argv.includes("--provider-http2"),
  sluiceEnv: Object.fromEntries((option("sluice-env")?.split(",") ?? []).map((pair) => pair.split(":", 2) as [string, string])),
};

const unknownSystems = settings.systems.filter((name) => !(systemNames as readonly string[]).includes(name));
if (unknownSystems.length > 0) {
  process.stderr.write(`unknown system(s) ${unknownSystems.join(", ")}; known: ${systemNames.join(", ")}\n`);
  process.exit(2);
}

const resultsDirectory = join(repositoryRoot, "bench", "results");
mkdirSync(join(resultsDirectory, "logs"), { recursive: true });
const log = (line: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

// Ctrl-C: stop what this run started (the finally blocks below), then exit.
process.once("SIGINT", () => {
  log("interrupted: stopping");
  void services?.stop().finally(() => process.exit(130));
});

const steps: StepRecord[] = [];
const idle: IdleRecord[] = [];
const startedAt = Date.now();
let services: BenchServices | undefined;
try {
  log(`load average ${loadavg().map((value) => value.toFixed(1)).join(" ")} (other work on this machine skews every figure)`);
  log(`mode ${settings.mode}: systems ${settings.systems.join(", ")}; rates ${settings.rates.join("/")} tokens/s; steps ${settings.steps.join(", ")} streams`);
  services = await startBenchServices();
  log(`redis ${services.redis.url}, postgres port ${services.postgres.port}`);
  const infrastructure = [
    { name: "redis-server", pid: services.redis.pid() ?? -1 },
    { name: "postgres", pid: services.postgres.pid ?? -1, tree: true },
  ];
  for (const name of settings.systems) {
    log(`--- ${systemLabels[name]}`);
    const system = await createSystem(name, {
      services,
      resultsDirectory,
      conversations: Math.max(...settings.steps, settings.idleConnections, settings.resumeStreams, settings.burstRunningStreams + settings.burstStartsPerSecond * settings.burstSeconds),
      profile: profile && isSluice(name),
      logLevel: settings.logLevel,
      sluiceEnv: settings.sluiceEnv,
      redisSocket: settings.redisSocket,
      providerHttp2: settings.providerHttp2,
    });
    try {
      for (const rate of settings.rates) {
        const tokenCount = Math.round(rate * settings.streamSeconds);
        const prepared = await system.prepare(rate, tokenCount);
        const plan = {
          kind: prepared.kind,
          baseUrl: prepared.baseUrl,
          ...streamInPost(prepared),
          rampMs: settings.rampMs,
          tokensPerSecond: rate,
          tokenCount,
          timeoutMs: settings.rampMs + settings.streamSeconds * 1000 + 30_000,
          ...(prepared.sessionFile ? { sessionFile: prepared.sessionFile } : {}),
        };
        const processes = [...prepared.processes, ...infrastructure];
        if (settings.warmupStreams > 0) {
          // Unmeasured: fresh processes pay for JIT and pool connections on their first requests
          // (the first of three identical 50-stream steps had ~2.5x the POST -> first token p50
          // of the next two), which is not the steady state the sweep is meant to compare.
          const warmup = await runStep({ services, system: name, scenario: "sweep", plan: { ...plan, streams: settings.warmupStreams, tokenCount: rate }, processes, onProgress: () => undefined, ...statementCounting(name) });
          log(`warm-up ${name}: ${settings.warmupStreams} streams, p99 ${warmup.result.latencyMs.p99} ms (not counted)`);
        }
        for (const streams of settings.steps) {
          const record = await runStep({
            services,
            system: name,
            scenario: "sweep",
            plan: { ...plan, streams },
            processes,
            onProgress: (line) => log(`  ${name} ${rate}/s x${streams}: ${line}`),
            ...statementCounting(name),
          });
          steps.push(record);
          const { result } = record;
          const perProvider = cpuPerProviderCpu(record.processes);
          log(
            `${record.passed ? "PASS" : "FAIL"} ${name} ${streams} streams x ${rate}/s: p50 ${result.latencyMs.p50} p99 ${result.latencyMs.p99} max ${result.latencyMs.max} ms; ` +
              `POST->answer p50 ${result.submitToAnswerMs.p50} ms, ->1st token p50 ${result.submitToFirstTokenMs.p50} ms; ` +
              (result.startsPerSecond ? `starts/s peak ${result.startsPerSecond.peak} mean ${result.startsPerSecond.mean}; ` : "") +
              `lost ${result.lost} dup ${result.duplicated} failed ${result.failed}; ${record.processes.map((usage) => formatUsage(usage, "%")).join(" ")}; ` +
              (perProvider === undefined ? "" : `Sluice/provider CPU ${perProvider}; `) +
              `loop delay p99/max ${Object.entries(record.eventLoopDelay).map(([process, delay]) => `${process} ${delay.p99Ms}/${delay.maxMs}`).join(" ") || "-"}, ` +
              `load client ${result.eventLoopDelay.p99Ms}/${result.eventLoopDelay.maxMs} ms; ` +
              `redis/token ${record.redisCommandsPerToken}, stmts/msg ${record.statementsPerMessage}` +
              (result.errors.length > 0 ? `; e.g. ${result.errors[0]}` : ""),
          );
          if (!record.passed) break;
        }
        // Resume needs a cursor: the floors (direct, provider-direct) have none.
        if (rate === settings.rates[0] && name !== "direct" && name !== "provider-direct") {
          const record = await runStep({
            services,
            system: name,
            scenario: "resume",
            plan: { ...plan, streams: settings.resumeStreams, resumeAfterTokens: settings.resumeAfterTokens, resumeGapMs: settings.resumeGapMs },
            processes,
            onProgress: (line) => log(`  ${name} resume: ${line}`),
            ...statementCounting(name),
          });
          steps.push(record);
          const resume = record.result.resumeToFirstEventMs;
          log(`resume ${name}: to headers p50 ${record.result.resumeToHeadersMs?.p50} p99 ${record.result.resumeToHeadersMs?.p99} ms, to first event p50 ${resume?.p50} p99 ${resume?.p99} ms; lost ${record.result.lost} dup ${record.result.duplicated} failed ${record.result.failed}`);
        }
      }
      if (name.startsWith("sluice-openai")) {
        // The start path on an idle system: one message at a time (every 200 ms; each reply lasts
        // 100 ms), so POST -> answer and POST -> first token are latency, not queueing.
        const rate = settings.rates[0] ?? 20;
        const prepared = await system.prepare(rate, Math.round(rate * settings.streamSeconds));
        const settled = await waitForQuiet([...prepared.processes, ...infrastructure]);
        log(`start path ${name}: waited ${settled.waitedMs} ms for the processes to go quiet${settled.quiet ? "" : " (they did not; measuring anyway)"}`);
        const record = await runStep({
          services,
          system: name,
          scenario: "start-path",
          plan: { kind: prepared.kind, baseUrl: prepared.baseUrl, ...streamInPost(prepared), sessionFile: prepared.sessionFile ?? "", streams: 50, rampMs: 10_000, tokensPerSecond: 50, tokenCount: 5, timeoutMs: 60_000 },
          processes: [...prepared.processes, ...infrastructure],
          onProgress: () => undefined,
          ...statementCounting(name),
        });
        steps.push(record);
        const { result } = record;
        log(
          `start path ${name} (idle, one at a time): POST->answer p50 ${result.submitToAnswerMs.p50} p99 ${result.submitToAnswerMs.p99} ms, ` +
            `->start p50 ${result.submitToStartMs?.p50 ?? "-"} ms, ->first token p50 ${result.submitToFirstTokenMs.p50} p99 ${result.submitToFirstTokenMs.p99} ms; stmts/msg ${record.statementsPerMessage}`,
        );
      }
      // The real provider path only: its pace and length travel in each message, so the running
      // streams and the burst's short replies can differ (the simulated worker has one of each).
      if (name.startsWith("sluice-openai") && settings.burstStartsPerSecond > 0) {
        const rate = settings.rates[0] ?? 20;
        const prepared = await system.prepare(rate, Math.round(rate * settings.streamSeconds));
        await runBurst(name, prepared, [...prepared.processes, ...infrastructure]);
      }
      // Idle viewers once per design: the openai variants share Sluice's API, and `start` cannot stop its worker alone.
      if ((name === "sluice" || name === "polling" || name === "pubsub") && settings.idleConnections > 0) {
        const prepared = await system.stopGenerator();
        const record = await idleConnections({ services, system: name, count: settings.idleConnections, prepared, processes: [...prepared.processes, ...infrastructure] });
        idle.push(record);
        log(`idle ${name}: ${record.connections} SSE connections, +${record.rssPerConnectionKb} KB RSS each (${record.processName}), ${record.statementsPerSecond} DB statements/s, ${record.redisConnections} Redis connections`);
      }
    } finally {
      await system.stop();
    }
  }
} finally {
  await services?.stop();
}

/**
 * The burst: `burstRunningStreams` streams at 20 tokens/s run for the whole scenario; a second
 * load client starts `burstStartsPerSecond` short generations per second for `burstSeconds`,
 * beginning 2 s in. The running streams' token latency is the figure: the target is p99 < 100 ms.
 */
async function runBurst(name: SystemName, prepared: PreparedSystem, processes: WatchedProcess[]): Promise<void> {
  if (!prepared.sessionFile) return;
  const runningSeconds = settings.burstSeconds + 6;
  const running = runStep({
    services: services as BenchServices,
    system: name,
    scenario: "burst-running",
    plan: { kind: prepared.kind, baseUrl: prepared.baseUrl, ...streamInPost(prepared), sessionFile: prepared.sessionFile, streams: settings.burstRunningStreams, rampMs: 1_000, tokensPerSecond: 20, tokenCount: 20 * runningSeconds, timeoutMs: runningSeconds * 1000 + 60_000 },
    processes,
    onProgress: (line) => log(`  ${name} burst, running: ${line}`),
    ...statementCounting(name),
  });
  // Scenario timing, not synchronisation: the running streams are live by then.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const burstStreams = settings.burstStartsPerSecond * settings.burstSeconds;
  const burst = runStep({
    services: services as BenchServices,
    system: name,
    scenario: "burst",
    plan: { kind: prepared.kind, baseUrl: prepared.baseUrl, ...streamInPost(prepared), sessionFile: prepared.sessionFile, conversationOffset: settings.burstRunningStreams, streams: burstStreams, rampMs: settings.burstSeconds * 1000, tokensPerSecond: 50, tokenCount: 5, timeoutMs: settings.burstSeconds * 1000 + 120_000 },
    processes,
    onProgress: (line) => log(`  ${name} burst, new: ${line}`),
    resetCounters: false,
  });
  const [runningRecord, burstRecord] = await Promise.all([running, burst]);
  steps.push(runningRecord, burstRecord);
  const latency = runningRecord.result.latencyMs;
  const starts = burstRecord.result.startsPerSecond;
  log(
    `burst ${name}: ${burstStreams} generations over ${settings.burstSeconds} s (starts/s peak ${starts?.peak ?? "-"} mean ${starts?.mean ?? "-"}, POST->answer p50 ${burstRecord.result.submitToAnswerMs.p50} p99 ${burstRecord.result.submitToAnswerMs.p99} ms, failed ${burstRecord.result.failed}); ` +
      `the ${settings.burstRunningStreams} running streams: p50 ${latency.p50} p99 ${latency.p99} max ${latency.max} ms, lost ${runningRecord.result.lost} dup ${runningRecord.result.duplicated} (${runningRecord.passed ? "PASS" : "FAIL"})`,
  );
}

/** The plan's field for a system whose client reads each stream in its POST's response. */
function streamInPost(prepared: PreparedSystem): { streamInPost?: true } {
  return prepared.streamInPost ? { streamInPost: true } : {};
}

/** Whose statements each step keeps; an embedded system's PGlite is out of pg_stat_statements' sight. */
function statementCounting(name: SystemName): { statementsRoles: Record<string, true>; countsStatements: boolean } {
  if (name === "sluice-openai-embedded") return { statementsRoles: {}, countsStatements: false };
  if (isSluice(name)) return { statementsRoles: { [databaseRoles.api]: true, [databaseRoles.worker]: true, [databaseRoles.start]: true }, countsStatements: true };
  return { statementsRoles: name === "polling" ? { [databaseRoles.polling]: true } : {}, countsStatements: true };
}

const stamp = new Date(startedAt).toISOString().replace(/[:.]/g, "-").slice(0, 19);
const machine = { loadAverageAtEnd: Math.round((loadavg()[0] ?? 0) * 10) / 10, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "", memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version };
const report = { startedAt: new Date(startedAt).toISOString(), durationSeconds: Math.round((Date.now() - startedAt) / 1000), machine, settings, steps, idle };
const base = join(resultsDirectory, `${settings.mode}-${stamp}`);
const json = `${compactJson(report)}\n`;
writeFileSync(`${base}.json`, json);
writeFileSync(`${base}.svg`, renderChart(report));
const table = renderTable(report);
writeFileSync(`${base}.md`, table);
writeFileSync(join(resultsDirectory, `latest-${settings.mode}.json`), json);
writeFileSync(join(resultsDirectory, `latest-${settings.mode}.svg`), renderChart(report));
writeFileSync(join(resultsDirectory, `latest-${settings.mode}.md`), table);
process.stdout.write(`\n${table}\n`);
log(`wrote ${base}.json, .svg, .md in ${report.durationSeconds} s`);

/**
 * JSON with two-space indents, except that arrays of numbers and arrays of
 * such arrays (the CDF points, the top Redis commands) stay on one line: the
 * same data in a fraction of the lines.
 */
function compactJson(value: unknown, indent = ""): string {
  const flat = (item: unknown): boolean => item === null || typeof item !== "object" || (Array.isArray(item) && item.every((inner) => inner === null || typeof inner !== "object"));
  if (Array.isArray(value)) {
    if (value.every(flat)) return JSON.stringify(value);
    const inner = `${indent}  `;
    return `[\n${value.map((item) => `${inner}${compactJson(item, inner)}`).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return "{}";
    const inner = `${indent}  `;
    return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${compactJson(item, inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value) ?? "null";
}
