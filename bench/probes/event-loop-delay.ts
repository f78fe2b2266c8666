// Preloaded into Sluice's processes by the benchmark (`node --import=<this file> …`),
// so event-loop delay is measured without any product change.
//
// With BENCH_LOOP_DELAY_FILE set, a perf_hooks histogram samples the loop's
// delay; each SIGUSR2 writes what it saw since the previous SIGUSR2 to that
// file (atomically, with a sequence number) and starts over. The runner sends
// one at the start of a step (discarded) and one at its end
// (bench/lib/event-loop-probe.ts). Without the variable this module does nothing.
import { renameSync, writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { loopDelayOf } from "../lib/loop-delay.ts";

const file = process.env.BENCH_LOOP_DELAY_FILE;
if (file !== undefined && file !== "") {
  /** Sampling interval (ms): a 5 ms timer costs little and still sees every stall longer than that. */
  const resolutionMs = 5;
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  let sequence = 0;
  process.on("SIGUSR2", () => {
    sequence += 1;
    const record = { sequence, pid: process.pid, ...loopDelayOf(histogram, resolutionMs) };
    writeFileSync(`${file}.tmp`, JSON.stringify(record));
    renameSync(`${file}.tmp`, file);
    histogram.reset();
  });
}
