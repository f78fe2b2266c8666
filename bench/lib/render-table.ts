import { formatUsage } from "./process-stats.ts";
import type { StepRecord } from "./run-step.ts";
import { summarizeSystem, round, type BenchReport, type SystemSummary } from "./summarize-report.ts";

const labels: Record<string, string> = {
  sluice: "Sluice (simulated, api + worker)",
  "sluice-openai-start": "Sluice start <- OpenAI server",
  "sluice-openai-split": "Sluice api + worker <- OpenAI server",
  "sluice-openai-embedded": "Sluice start on PGlite (npm start) <- OpenAI server",
  "sluice-openai-start-post": "Sluice start, stream in the POST <- OpenAI server",
  "sluice-openai-split-post": "Sluice api + worker, stream in the POST <- OpenAI server",
  "provider-direct": "OpenAI server read directly (floor)",
  polling: "PG polling (seed before)",
  pubsub: "RPUSH+PUBLISH (seed after)",
  resumable: "resumable-stream",
  direct: "direct (floor)",
};

/** Markdown: the side-by-side summary with ratios vs Sluice, then every sweep step. */
export function renderTable(report: BenchReport): string {
  const summaries = report.settings.systems.map((system) => summarizeSystem(report, system));
  // Ratios compare with the simulated Sluice (the baselines generate in-process as it does), else the first Sluice system run.
  const sluice = summaries.find((summary) => summary.system === "sluice") ?? summaries.find((summary) => summary.system.startsWith("sluice-"));
  const reference = report.settings.steps[0];
  const firstRate = report.settings.rates[0];
  type Metric = { name: string; value: (summary: SystemSummary) => number | undefined; format?: (summary: SystemSummary) => string; better: "lower" | "higher" };
  const metrics: Metric[] = [
    { name: `token latency p50 (ms) @${reference}x${firstRate}/s`, value: (s) => s.reference?.result.latencyMs.p50, better: "lower" },
    { name: `token latency p99 (ms) @${reference}x${firstRate}/s`, value: (s) => s.reference?.result.latencyMs.p99, better: "lower" },
    { name: `token latency max (ms) @${reference}x${firstRate}/s`, value: (s) => s.reference?.result.latencyMs.max, better: "lower" },
    { name: "first token, emit->client p50 (ms)", value: (s) => s.reference?.result.firstTokenMs.p50, better: "lower" },
    { name: "first token, POST->client p50 (ms)", value: (s) => s.reference?.result.submitToFirstTokenMs.p50, better: "lower" },
    { name: "first token, POST->client p99 (ms)", value: (s) => s.reference?.result.submitToFirstTokenMs.p99, better: "lower" },
    { name: "POST -> answer (HTTP response) p50 (ms)", value: (s) => s.reference?.result.submitToAnswerMs?.p50, better: "lower" },
    { name: "POST -> start event p50 (ms)", value: (s) => s.reference?.result.submitToStartMs?.p50, better: "lower" },
    { name: "generation starts / s, peak (largest step)", value: (s) => largestStep(report, s.system)?.result.startsPerSecond?.peak, better: "higher" },
    { name: `event-loop delay p99 (ms) @${reference}x${firstRate}/s`, value: (s) => worstLoopDelay(s.reference), format: (s) => loopDelayText(s.reference), better: "lower" },
    ...report.settings.rates.map((rate): Metric => ({
      name: `capacity @${rate} tokens/s (streams, p99<100ms, 0 lost/dup)`,
      value: (s) => s.capacity[rate]?.streams,
      format: (s) => {
        const capacity = s.capacity[rate];
        if (!capacity) return "-";
        if (capacity.belowFirstStep) return `<${report.settings.steps[0]}`;
        return `${capacity.ceiling ? ">=" : ""}${capacity.streams}`;
      },
      better: "higher",
    })),
    {
      name: "DB statements / message (total)",
      value: (s) => s.statementsPerMessage?.total,
      format: (s) => {
        const split = s.statementsPerMessage;
        if (!split) return "-";
        return split.start > 0 ? `${split.total} (one process)` : `${split.total} (api ${split.api}, worker ${split.worker})`;
      },
      better: "lower",
    },
    { name: `DB statements / s @${reference}x${firstRate}/s`, value: (s) => s.statementsPerSecond, better: "lower" },
    { name: "Redis commands / token", value: (s) => s.redisCommandsPerToken, better: "lower" },
    { name: "Redis connections (reference -> largest step)", value: (s) => s.redisConnections?.largest, format: (s) => (s.redisConnections ? `${s.redisConnections.reference} -> ${s.redisConnections.largest} @${s.redisConnections.largestStreams}` : "-"), better: "lower" },
    { name: "server CPU % (sum of its processes)", value: (s) => s.serverCpuPercent, better: "lower" },
    { name: "server peak RSS MB", value: (s) => s.serverRssMb, better: "lower" },
    { name: "SSE GET -> response headers p50 (ms)", value: (s) => s.reference?.result.openToHeadersMs?.p50, better: "lower" },
    { name: "resume -> response headers p50 (ms)", value: (s) => s.resume?.result.resumeToHeadersMs?.p50, better: "lower" },
    { name: "resume -> first event p50 (ms)", value: (s) => s.resume?.result.resumeToFirstEventMs?.p50, better: "lower" },
    { name: "resume -> first event p99 (ms)", value: (s) => s.resume?.result.resumeToFirstEventMs?.p99, better: "lower" },
    { name: "resume: tokens lost / duplicated", value: (s) => (s.resume ? s.resume.result.lost + s.resume.result.duplicated : undefined), format: (s) => (s.resume ? `${s.resume.result.lost} / ${s.resume.result.duplicated}` : "-"), better: "lower" },
    { name: "idle SSE: KB RSS per connection", value: (s) => s.idle?.rssPerConnectionKb, better: "lower" },
    { name: "idle SSE: DB statements / s", value: (s) => s.idle?.statementsPerSecond, better: "lower" },
  ];
  const header = ["metric", ...summaries.map((summary) => labels[summary.system] ?? summary.system)];
  const lines = [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`];
  for (const metric of metrics) {
    const mine = sluice ? metric.value(sluice) : undefined;
    const cells = summaries.map((summary) => {
      const value = metric.value(summary);
      const text = metric.format ? metric.format(summary) : value === undefined || Number.isNaN(value) ? "-" : String(value);
      if (summary === sluice || mine === undefined || value === undefined || Number.isNaN(value) || Number.isNaN(mine)) return text;
      // The ratio is always "how many times better Sluice is" (< 1 means worse).
      const ratio = metric.better === "lower" ? value / mine : mine / value;
      // Two significant digits below 0.1, so a floor 500x faster does not read as "0x".
      const shown = ratio >= 0.1 ? round(ratio) : Number(ratio.toPrecision(2));
      return Number.isFinite(ratio) && ratio > 0 ? `${text} (**${shown}x**)` : text;
    });
    lines.push(`| ${metric.name} | ${cells.join(" | ")} |`);
  }
  const stepLines = [
    "| system | tokens/s | streams | pass | p50 | p99 | max ms | POST->1st p50 / p99 | POST->answer p50 / p99 | starts/s peak / mean | lost | dup | failed | CPU% by process | loop delay p99 ms | Redis cmds/token | DB stmts/msg | Redis conns | load avg |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...report.steps
      .filter((step) => step.scenario === "sweep")
      .map((step) => {
        const r = step.result;
        const cpu = step.processes.map((usage) => formatUsage(usage)).join(", ");
        const connections = Object.values(step.redisConnections).reduce((sum, count) => sum + count, 0);
        const starts = r.startsPerSecond ? `${r.startsPerSecond.peak} / ${r.startsPerSecond.mean}` : "-";
        const answer = r.submitToAnswerMs ? `${r.submitToAnswerMs.p50} / ${r.submitToAnswerMs.p99}` : "-";
        return (
          `| ${step.system} | ${step.tokensPerSecond} | ${step.streams} | ${step.passed ? "yes" : "no"} | ${r.latencyMs.p50} | ${r.latencyMs.p99} | ${r.latencyMs.max} | ` +
          `${r.submitToFirstTokenMs.p50} / ${r.submitToFirstTokenMs.p99} | ${answer} | ${starts} | ${r.lost} | ${r.duplicated} | ${r.failed} | ${cpu} | ${loopDelayText(step)} | ` +
          `${step.redisCommandsPerToken} | ${step.statementsPerMessage ?? "-"} | ${connections} | ${step.loadAverage} |`
        );
      }),
  ];
  return [
    `Sluice benchmark (${report.settings.mode}), ${report.startedAt}, ${report.machine.cpus} CPUs (${report.machine.cpuModel}), ${report.machine.memoryGb} GB, Node ${report.machine.node}.`,
    `Load average (1 min) at the end: ${report.machine.loadAverageAtEnd}; per step in the JSON (loadAverage). Anything above ~2 means other work shared these cores.`,
    `Ratios in bold: how many times better ${sluice ? (labels[sluice.system] ?? sluice.system) : "Sluice"} is than that system (below 1 = worse).`,
    "",
    ...lines,
    "",
    "Every sweep step:",
    "",
    ...stepLines,
    "",
  ].join("\n");
}

/** The largest sweep step a system ran (its generation starts per second are the highest there). */
function largestStep(report: BenchReport, system: string): StepRecord | undefined {
  return report.steps.filter((step) => step.system === system && step.scenario === "sweep").reduce<StepRecord | undefined>((best, step) => (best === undefined || step.streams > best.streams ? step : best), undefined);
}

function worstLoopDelay(step: StepRecord | undefined): number | undefined {
  const delays = Object.values(step?.eventLoopDelay ?? {});
  return delays.length === 0 ? undefined : Math.max(...delays.map((delay) => delay.p99Ms));
}

/** `api 12.3, worker 8.1` (sluice-api -> api), or "-" for systems without the probe. */
function loopDelayText(step: StepRecord | undefined): string {
  const entries = Object.entries(step?.eventLoopDelay ?? {});
  return entries.length === 0 ? "-" : entries.map(([name, delay]) => `${name.replace(/^sluice-/, "")} ${delay.p99Ms}`).join(", ");
}
