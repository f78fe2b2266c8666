// The floor of the Redis hop of the real path, per token: `streams` writers append one token each
// every 1000/rate ms (a stream's own coalescing merges nothing at 20 tokens/s) through Sluice's
// stream log on one autopipelined connection, as the worker does; a second process subscribes to
// every stream's channel, as an API's hub does. Prints the CPU per token of the writer, the
// subscriber and redis-server, and the notification latency (append call → subscriber), per round.
//   node bench/floors/redis-hop-floor.ts [streams=500] [rate=20] [seconds=8] [rounds=3]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { findExecutable } from "../../src/embedded/find-executable.ts";
import { startRedisServer } from "../../src/embedded/redis-server.ts";
import { createStreamLog, streamKeys } from "../../src/streaming/index.ts";
import { sampleProcess } from "../lib/process-stats.ts";

if (process.argv[2] === "subscriber") {
  const [url, prefix, count] = [process.argv[3] ?? "", process.argv[4] ?? "", Number(process.argv[5])];
  const subscriber = new Redis(url);
  const latencies: number[] = [];
  subscriber.on("message", (_channel: string, message: string) => {
    // Each token's text is the wall-clock time of its append call.
    const stamp = /"delta":"([\d.]+)"/.exec(message);
    if (stamp) latencies.push(performance.timeOrigin + performance.now() - Number(stamp[1]));
  });
  await subscriber.subscribe(...Array.from({ length: count }, (_, index) => streamKeys(prefix, `s${String(index)}`).notify));
  process.send?.("subscribed");
  process.on("message", (message) => {
    if (message === "report") {
      latencies.sort((a, b) => a - b);
      process.send?.({ count: latencies.length, p50: latencies[Math.floor(latencies.length / 2)] ?? 0, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 });
      latencies.length = 0;
    }
    if (message === "exit") process.exit(0);
  });
} else {
  const [streams = 500, rate = 20, seconds = 8] = process.argv.slice(2, 5).map(Number);
  const rounds = Number(process.argv[5] ?? 3);
  const directory = mkdtempSync(join(tmpdir(), "sluice-redis-hop-floor-"));
  const executable = findExecutable("redis-server", process.env.PATH);
  if (executable === undefined) throw new Error("redis-server is not on PATH");
  const server = await startRedisServer({ executable, dataDirectory: directory, appendOnly: false, supervise: false });
  const prefix = "probe:";
  const subscriber = fork(process.argv[1] ?? "", ["subscriber", server.url, prefix, String(streams)]);
  await new Promise((resolve) => subscriber.once("message", resolve));
  const cpuOf = (pid: number | undefined): number => (sampleProcess(pid ?? -1)?.cpuSeconds ?? Number.NaN) * 1000;
  try {
    for (let round = 1; round <= rounds; round += 1) {
      const redis = new Redis(server.url, { enableAutoPipelining: true });
      const log = createStreamLog({ redis, keyPrefix: prefix });
      const attempts = await Promise.all(Array.from({ length: streams }, (_, index) => log.beginAttempt(`s${String(index)}`)));
      subscriber.send("report");
      await new Promise((resolve) => subscriber.once("message", resolve));
      const before = { writer: process.cpuUsage(), subscriber: cpuOf(subscriber.pid), redis: cpuOf(server.pid()) };
      let tokens = 0;
      const endAt = performance.now() + seconds * 1000;
      await Promise.all(
        attempts.map(async (attempt, index) => {
          await new Promise((resolve) => setTimeout(resolve, (index * 1000) / streams / rate));
          while (performance.now() < endAt) {
            const due = performance.now() + 1000 / rate;
            await log.append(`s${String(index)}`, attempt.attempt, [{ type: "text-delta", delta: (performance.timeOrigin + performance.now()).toFixed(3) }]);
            tokens += 1;
            await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
          }
        }),
      );
      const writerCpu = process.cpuUsage(before.writer);
      const subscriberMs = cpuOf(subscriber.pid) - before.subscriber;
      const redisMs = cpuOf(server.pid()) - before.redis;
      subscriber.send("report");
      const latency = await new Promise<{ count: number; p50: number; p99: number }>((resolve) => subscriber.once("message", resolve as (message: unknown) => void));
      const perToken = (ms: number): string => ((ms * 1000) / tokens).toFixed(1);
      console.log(
        `round ${String(round)}: ${String(tokens)} tokens; µs of CPU per token: writer ${perToken((writerCpu.user + writerCpu.system) / 1000)}, subscriber ${perToken(subscriberMs)}, redis-server ${perToken(redisMs)}; notification p50 ${latency.p50.toFixed(2)} p99 ${latency.p99.toFixed(2)} ms`,
      );
      await redis.flushall();
      redis.disconnect();
    }
  } finally {
    subscriber.send("exit");
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}
