/**
 * Micro-benchmark of the streaming core in one process with a real redis-server:
 * the coalescing writer → Redis log (one EVALSHA per flush) → pub/sub → hub →
 * serveSse → 1,000 real HTTP/1.1 SSE connections on loopback.
 *
 *   node bench/streaming-micro.ts [scenario index]   (Node 24; `npx node …` uses the project's)
 *
 * Reports, per scenario, the chunks per second the writer sustains (writer
 * calls whose bytes reached every viewer's socket) and the latency from the
 * writer call to the SSE bytes being written to a viewer's socket (p50/p99 over
 * every chunk × every 50th viewer: timing all 1,000 would cost more than what
 * is measured). Each chunk carries its own index, so the server side can time
 * it in the socket write without a second clock. The 1,000 HTTP clients run in a child process (they only count frames); the
 * machine's load average is reported with the figures, which are a floor on a
 * shared machine.
 */
import { fork } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request as httpRequest, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { findExecutable } from "../src/embedded/find-executable.ts";
import { startRedisServer } from "../src/embedded/redis-server.ts";
import { createStreamHub, createStreamLog, createStreamWriter, noopStreamMetrics, serveSse, type StreamHub, type StreamLog } from "../src/streaming/index.ts";

interface Scenario {
  name: string;
  streams: number;
  viewersPerStream: number;
  /** Chunks each writer produces; 0 = as fast as it can, yielding to I/O every `burst` chunks. */
  chunksPerStream: number;
  intervalMs: number;
  burst: number;
  coalesceWindowMs: number;
}

const scenarios: Scenario[] = [
  { name: "throughput: 1 stream x 1,000 viewers, writer flat out, 16 ms window", streams: 1, viewersPerStream: 1_000, chunksPerStream: 50_000, intervalMs: 0, burst: 100, coalesceWindowMs: 16 },
  { name: "latency: 1 stream x 1,000 viewers, 1 chunk / 5 ms, 16 ms window", streams: 1, viewersPerStream: 1_000, chunksPerStream: 500, intervalMs: 5, burst: 1, coalesceWindowMs: 16 },
  { name: "latency: 1 stream x 1,000 viewers, 1 chunk / 5 ms, no coalescing", streams: 1, viewersPerStream: 1_000, chunksPerStream: 500, intervalMs: 5, burst: 1, coalesceWindowMs: 0 },
  { name: "latency: 100 streams x 10 viewers, 1 chunk / 20 ms each, 16 ms window", streams: 100, viewersPerStream: 10, chunksPerStream: 150, intervalMs: 20, burst: 1, coalesceWindowMs: 16 },
];

const marker = /\u27e8(\d+)\u27e9/g;
/** Every n-th viewer's socket writes are timed. */
const sampleEvery = 50;

interface Sampler {
  sentAt: Float64Array;
  latencies: Float64Array;
  count: number;
}

async function runScenario(scenario: Scenario, log: StreamLog, hub: StreamHub, fanOut: number[], runId: string): Promise<Record<string, number | string>> {
  fanOut.length = 0;
  const totalChunks = scenario.streams * scenario.chunksPerStream;
  const sampler: Sampler = {
    sentAt: new Float64Array(totalChunks),
    latencies: new Float64Array(totalChunks * Math.ceil(scenario.viewersPerStream / sampleEvery) + 16),
    count: 0,
  };
  let socketWrites = 0;
  let connections = 0;
  const server = createServer((request, response) => {
    const taskId = new URL(request.url ?? "/", "http://localhost").pathname.slice(1);
    instrument(response, connections++ % sampleEvery === 0 ? sampler : undefined, () => (socketWrites += 1));
    void serveSse({ request, response, hub, taskId, heartbeatMs: 60_000 });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const taskIds = Array.from({ length: scenario.streams }, (_, index) => `${runId}-${index}`);
  const attempts = await Promise.all(taskIds.map(async (taskId) => (await log.beginAttempt(taskId)).attempt));
  // The HTTP clients live in a child process, so reading 1,000 sockets does not compete with the hub's event loop.
  const clients = fork(fileURLToPath(import.meta.url), ["--clients"], { stdio: "inherit" });
  const allDone = new Promise<number>((resolve, reject) => {
    clients.once("message", (message: { framesReceived: number }) => resolve(message.framesReceived));
    clients.once("exit", (code) => reject(new Error(`the client process exited with ${String(code)}`)));
  });
  clients.send({ port, paths: taskIds.flatMap((taskId) => Array.from({ length: scenario.viewersPerStream }, () => `/${taskId}`)) } satisfies ClientOrder);
  await waitUntil(() => hub.stats().viewers === scenario.streams * scenario.viewersPerStream, 30_000);

  const loadBefore = loadavg()[0] ?? 0;
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  let chunkIndex = 0;
  await Promise.all(
    taskIds.map(async (taskId, streamIndex) => {
      const writer = createStreamWriter({ log, taskId, attempt: attempts[streamIndex] ?? 1, coalesceWindowMs: scenario.coalesceWindowMs });
      for (let chunk = 0; chunk < scenario.chunksPerStream; chunk += 1) {
        const index = chunkIndex++;
        sampler.sentAt[index] = performance.now();
        writer.appendText(`\u27e8${index}\u27e9 `);
        if (scenario.intervalMs > 0) await sleep(scenario.intervalMs);
        else if (chunk % scenario.burst === scenario.burst - 1) await new Promise((resolve) => setImmediate(resolve));
      }
      await writer.end({ status: "completed" });
    }),
  );
  const writerDoneAt = performance.now();
  const framesReceived = await allDone;
  const deliveredAt = performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  clients.kill();
  server.close();

  const latencies = sampler.latencies.subarray(0, sampler.count).sort();
  const fanOutTimes = Float64Array.from(fanOut).sort();
  const deliveries = totalChunks * scenario.viewersPerStream;
  return {
    scenario: scenario.name,
    chunks: totalChunks,
    viewers: scenario.streams * scenario.viewersPerStream,
    "writer chunks/s (all viewers served)": Math.round(totalChunks / ((deliveredAt - startedAt) / 1000)),
    "writer-only chunks/s": Math.round(totalChunks / ((writerDoneAt - startedAt) / 1000)),
    "chunk deliveries/s": Math.round(deliveries / ((deliveredAt - startedAt) / 1000)),
    "log appends (frames per viewer)": Math.round(framesReceived / (scenario.streams * scenario.viewersPerStream)),
    "socket writes": socketWrites,
    "latency p50 ms": round(quantile(latencies, 0.5)),
    "latency p99 ms": round(quantile(latencies, 0.99)),
    "latency max ms": round(latencies.at(-1) ?? Number.NaN),
    "latency samples": sampler.count,
    // The hub's own metric: a notification in, its frames written to every live viewer.
    "hub fan-out per notification p50 ms": round(quantile(fanOutTimes, 0.5)),
    "hub fan-out per notification p99 ms": round(quantile(fanOutTimes, 0.99)),
    // CPU of the server process (writer, log, hub, 1,000 SSE responses): steadier than wall time on a busy machine.
    "server CPU ms": Math.round(cpuMs),
    "server CPU share of one core": round(cpuMs / (deliveredAt - startedAt)),
    "server CPU µs per socket write": round((cpuMs * 1000) / socketWrites),
    "load average (1 min) before / after": `${loadBefore.toFixed(1)} / ${(loadavg()[0] ?? 0).toFixed(1)}`,
  };
}

/** Times every chunk marker in each socket write of one SSE response. */
function instrument(response: ServerResponse, sampler: Sampler | undefined, onWrite: () => void): void {
  const write = response.write.bind(response) as (chunk: string) => boolean;
  response.write = ((chunk: string) => {
    const ok = write(chunk);
    const now = performance.now();
    onWrite();
    if (sampler && typeof chunk === "string") {
      for (const match of chunk.matchAll(marker)) {
        sampler.latencies[sampler.count++] = now - (sampler.sentAt[Number(match[1])] ?? now);
      }
    }
    return ok;
  }) as ServerResponse["write"];
}

function countOf(text: Buffer, needle: string): number {
  let count = 0;
  for (let index = text.indexOf(needle); index !== -1; index = text.indexOf(needle, index + needle.length)) count += 1;
  return count;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const round = (value: number): number => Math.round(value * 100) / 100;
const sleep = async (milliseconds: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, milliseconds));

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("timed out waiting for the viewers to attach");
    await sleep(10);
  }
}

interface ClientOrder {
  port: number;
  /** One SSE connection per path. */
  paths: string[];
}

/** Child process: opens the SSE connections, reads them to the end, reports the frames received. */
function runClients(order: ClientOrder): void {
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  let done = 0;
  let framesReceived = 0;
  for (const path of order.paths) {
    const request = httpRequest({ host: "127.0.0.1", port: order.port, path, agent, headers: { Accept: "text/event-stream" } }, (response) => {
      // Raw bytes: decoding 1,000 streams to strings would cost more than serving them.
      response.on("data", (chunk: Buffer) => {
        framesReceived += countOf(chunk, "\nevent: ");
      });
      response.on("end", () => {
        done += 1;
        if (done === order.paths.length) process.send?.({ framesReceived });
      });
    });
    request.end();
  }
}

async function main(): Promise<void> {
  const executable = findExecutable("redis-server", process.env.PATH);
  if (!executable) throw new Error("redis-server not found (apt-get install -y redis-server)");
  const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-bench-redis-"));
  const redisServer = await startRedisServer({ executable, dataDirectory, appendOnly: false, supervise: false });
  const commands = new Redis(redisServer.url, { maxRetriesPerRequest: null, enableAutoPipelining: true });
  const reader = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const subscriber = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const results: Array<Record<string, number | string>> = [];
  try {
    const log = createStreamLog({ redis: commands, keyPrefix: "bench:" });
    const readLog = createStreamLog({ redis: reader, keyPrefix: "bench:" });
    const fanOut: number[] = [];
    const metrics = { ...noopStreamMetrics, deliveryLatency: (milliseconds: number) => fanOut.push(milliseconds) };
    const hub = createStreamHub({ log: readLog, subscriber, metrics });
    // `node bench/streaming-micro.ts 1` runs only the second scenario (for profiling).
    const only = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
    for (const [index, scenario] of scenarios.entries()) {
      if (only !== undefined && index !== only) continue;
      const result = await runScenario(scenario, log, hub, fanOut, `run${index}`);
      results.push(result);
      console.log(JSON.stringify(result, null, 2));
    }
    await hub.close();
  } finally {
    commands.disconnect();
    reader.disconnect();
    subscriber.disconnect();
    await redisServer.stop();
    rmSync(dataDirectory, { recursive: true, force: true });
  }
  const resultsDirectory = join(dirname(fileURLToPath(import.meta.url)), "results");
  mkdirSync(resultsDirectory, { recursive: true });
  writeFileSync(join(resultsDirectory, "streaming-micro.json"), `${JSON.stringify({ node: process.version, at: new Date().toISOString(), results }, null, 2)}\n`);
}

if (process.argv[2] === "--clients") process.once("message", (order: ClientOrder) => runClients(order));
else await main();
