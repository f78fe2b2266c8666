import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat utime/stime (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

export interface ProcessSample {
  cpuSeconds: number;
  rssMb: number;
}

/** CPU time (user + system) and RSS of one process, from /proc; undefined once it is gone. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuTicks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuSeconds: cpuTicks / ticksPerSecond, rssMb: rssKb / 1024 };
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
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    root.cpuSeconds += (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
  } catch {
    // gone: the live sample above is all there is
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
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
  /** Preloaded with bench/probes/event-loop-delay.ts, answering in this file (bench/lib/event-loop-probe.ts). */
  loopDelayFile?: string;
}

export interface ProcessUsage {
  name: string;
  /** Share of one core over the window, in percent (200% = both cores of this machine). */
  cpuPercent: number;
  peakRssMb: number;
}

/** One watched process, with its children when it asks for them. */
function sampleWatched(watched: WatchedProcess): ProcessSample | undefined {
  return watched.tree ? sampleProcessTree(watched.pid) : sampleProcess(watched.pid);
}

/** Samples CPU and RSS of processes over a window; `stop()` gives each one's CPU% and peak RSS. */
export function watchProcesses(processes: readonly WatchedProcess[], intervalMs = 250): { stop(): ProcessUsage[] } {
  const startedAt = performance.now();
  const first = processes.map(sampleWatched);
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
        return { name: watched.name, cpuPercent: Math.round(cpu), peakRssMb: Math.round(Math.max(peaks[index] ?? 0, last?.rssMb ?? 0)) };
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
