import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { EventLoopDelay } from "./loop-delay.ts";
import { repositoryRoot } from "./spawn-server.ts";

/** The `--import` module that measures a Sluice process's event-loop delay (bench/probes/event-loop-delay.ts). */
export const eventLoopProbeModule = join(repositoryRoot, "bench", "probes", "event-loop-delay.ts");

export type { EventLoopDelay } from "./loop-delay.ts";

interface ProbeRecord extends EventLoopDelay {
  sequence: number;
  pid: number;
}

/**
 * Asks a preloaded process for its loop delay since the last ask: SIGUSR2, then
 * waits for the file's sequence number to move. Undefined when the process is
 * gone or does not answer within `timeoutMs` (a frozen loop answers late).
 */
export async function readEventLoopDelay(pid: number, file: string, timeoutMs = 10_000): Promise<EventLoopDelay | undefined> {
  const previous = readRecord(file);
  const before = previous?.pid === pid ? previous.sequence : 0;
  try {
    process.kill(pid, "SIGUSR2");
  } catch {
    return undefined;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const record = readRecord(file);
    if (record && record.pid === pid && record.sequence > before) {
      const { samples, p50Ms, p99Ms, maxMs, meanMs } = record;
      return { samples, p50Ms, p99Ms, maxMs, meanMs };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/** A fresh file per process start, so a restarted process's sequence starts from nothing. */
export function resetProbeFile(file: string): void {
  rmSync(file, { force: true });
}

function readRecord(file: string): ProbeRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ProbeRecord;
  } catch {
    return undefined;
  }
}
