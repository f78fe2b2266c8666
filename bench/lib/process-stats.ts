import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat utime/stime (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

export interface ProcessSample {
  cpuSeconds: number;
  rssMb: number;
}

/** The fields of a /proc/<pid>/stat line after the command name (which may contain spaces): state, field 3, first. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** User + system CPU seconds of a /proc stat line (utime, stime). */
function cpuSecondsOf(fields: readonly string[]): number {
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** CPU time (user + system) and RSS of one process, from /proc; undefined once it is gone. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const fields = statFields(readFileSync(`/proc/${pid}/stat`, "utf8"));
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuSeconds: cpuSecondsOf(fields), rssMb: rssKb / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * The process and all its direct children (PostgreSQL's backends), summed. CPU
 * also counts children that already exited (cutime + cstime of the parent), so
 * backends that come and go do not make the delta negative.
 */
export function sampleProcessTree(pid: number): ProcessSample | undefined {
  const root = sampleProcess(pid);
  if (!root) return undefined;
  try {
    // cutime and cstime, the two fields after utime and stime.
    root.cpuSeconds += cpuSecondsOf(statFields(readFileSync(`/proc/${pid}/stat`, "utf8")).slice(2));
  } catch {
    // gone: the live sample above is all there is
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(statFields(stat)[1]);
      if (parent !== pid) continue;
      const child = sampleProcess(Number(entry));
      if (child) {
        root.cpuSeconds += child.cpuSeconds;
        root.rssMb += child.rssMb;
      }
    } catch {
      // the process exited while we looked
    }
  }
  return root;
}

export interface WatchedProcess {
  name: string;
  pid: number;
  /** Sum the children too (PostgreSQL). */
  tree?: boolean;
  /** Also report CPU per thread (`sluice start` runs its API and its worker on two threads). */
  threads?: boolean;
  /** Preloaded with bench/probes/event-loop-delay.ts, answering in this file (bench/lib/event-loop-probe.ts). */
  loopDelayFile?: string;
}

export interface ProcessUsage {
  name: string;
  /** Share of one core over the window, in percent (200% = both cores of this machine). */
  cpuPercent: number;
  peakRssMb: number;
  /**
   * With `threads`: CPU% by thread name, a pool's threads together (MainThread, WorkerThread,
   * V8Worker for V8's GC and compiler helpers, libuv-worker); under 1 % left out.
   */
  threads?: Record<string, number>;
}

/** "sluice-start 70% (MainThread 21, WorkerThread 40, V8Worker 9)": a process's CPU and, when sampled, its threads'. */
export function formatUsage(usage: ProcessUsage, unit = ""): string {
  const threads = Object.entries(usage.threads ?? {}).sort(([, a], [, b]) => b - a);
  const split = threads.length > 1 ? ` (${threads.map(([name, percent]) => `${name} ${percent}`).join(", ")})` : "";
  return `${usage.name} ${usage.cpuPercent}${unit}${split}`;
}

/**
 * Sluice's processes' CPU over the bench provider's. The provider's work per token is fixed, and
 * on this VM every process's CPU drifts together between identical runs (up to 30 %), so this
 * ratio compares runs where the raw percentages do not (BENCHMARKS.md, twelfth session).
 */
export function cpuPerProviderCpu(processes: readonly ProcessUsage[]): number | undefined {
  const provider = processes.find((usage) => usage.name === "openai-provider")?.cpuPercent;
  const sluice = processes.filter((usage) => usage.name.startsWith("sluice-")).reduce((sum, usage) => sum + usage.cpuPercent, 0);
  return provider === undefined || provider <= 0 || sluice === 0 ? undefined : Math.round((sluice / provider) * 100) / 100;
}

/** CPU seconds of a process's threads by thread name (a pool's threads share one), from /proc/<pid>/task. */
function sampleThreads(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      byName.set(name, (byName.get(name) ?? 0) + cpuSecondsOf(statFields(stat)));
    } catch {
      // the thread ended while we looked; its time stays in the process's own total
    }
  }
  return byName;
}

function threadPercents(before: Map<string, number>, after: Map<string, number>, seconds: number): Record<string, number> {
  const percents: Record<string, number> = {};
  for (const [name, cpuSeconds] of after) {
    const percent = Math.round(((cpuSeconds - (before.get(name) ?? 0)) / seconds) * 100);
    if (percent >= 1) percents[name] = percent;
  }
  return percents;
}

/** One watched process, with its children when it asks for them. */
function sampleWatched(watched: WatchedProcess): ProcessSample | undefined {
  return watched.tree ? sampleProcessTree(watched.pid) : sampleProcess(watched.pid);
}

/** Samples CPU and RSS of processes over a window; `stop()` gives each one's CPU% and peak RSS. */
export function watchProcesses(processes: readonly WatchedProcess[], intervalMs = 250): { stop(): ProcessUsage[] } {
  const startedAt = performance.now();
  const first = processes.map(sampleWatched);
  const firstThreads = processes.map((watched) => (watched.threads ? sampleThreads(watched.pid) : undefined));
  const peaks = first.map((value) => value?.rssMb ?? 0);
  const timer = setInterval(() => {
    processes.forEach((watched, index) => {
      const now = sampleWatched(watched);
      if (now && now.rssMb > (peaks[index] ?? 0)) peaks[index] = now.rssMb;
    });
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      const seconds = (performance.now() - startedAt) / 1000;
      return processes.map((watched, index) => {
        const last = sampleWatched(watched);
        const cpu = last && first[index] ? ((last.cpuSeconds - first[index].cpuSeconds) / seconds) * 100 : Number.NaN;
        const threadsBefore = firstThreads[index];
        return {
          name: watched.name,
          cpuPercent: Math.round(cpu),
          peakRssMb: Math.round(Math.max(peaks[index] ?? 0, last?.rssMb ?? 0)),
          ...(threadsBefore ? { threads: threadPercents(threadsBefore, sampleThreads(watched.pid), seconds) } : {}),
        };
      });
    },
  };
}

/**
 * Waits until the processes together use less than `maxCpuPercent` of a core over a whole
 * `windowMs`, or `timeoutMs` passes; says how long it waited and whether they went quiet. A
 * measurement of the idle start path right after a failing step otherwise times the tail of
 * that step's work (BENCHMARKS.md, tenth session).
 */
export async function waitForQuiet(
  processes: readonly WatchedProcess[],
  { maxCpuPercent = 5, windowMs = 1_000, timeoutMs = 20_000 } = {},
): Promise<{ waitedMs: number; quiet: boolean }> {
  const startedAt = performance.now();
  const cpuSeconds = (): number => processes.reduce((sum, watched) => sum + (sampleWatched(watched)?.cpuSeconds ?? 0), 0);
  let before = cpuSeconds();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = cpuSeconds();
    const percent = ((now - before) * 100_000) / windowMs;
    before = now;
    const waitedMs = Math.round(performance.now() - startedAt);
    if (percent < maxCpuPercent) return { waitedMs, quiet: true };
    if (waitedMs >= timeoutMs) return { waitedMs, quiet: false };
  }
}
