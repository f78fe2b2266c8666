import type { Redis } from "ioredis";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { StreamMetrics } from "../streaming/stream-metrics.ts";

/** Every Sluice metric, registered once per process (docs/operations.md lists them). */
export interface SluiceMetrics {
  readonly registry: Registry;
  readonly stream: StreamMetrics;
  readonly providerTimeToFirstToken: Histogram;
  readonly chunksWritten: Counter;
  readonly bytesWritten: Counter;
  readonly generations: Counter<"status">;
  readonly jobsStalled: Counter;
  /** History left out of prompts to fit the context budget (src/worker/fit-context.ts). */
  readonly contextTurnsLeftOut: Counter;
  readonly contextTrimmed: Counter;
  readonly redisErrors: Counter;
  readonly postgresErrors: Counter;
  /** Gauges read at scrape time from the hub, the queue and Redis INFO. */
  addScrapeSources(sources: {
    hubStats?: () => { streams: number; viewers: number };
    queueCounts?: () => Promise<Record<string, number>>;
    redis?: Redis;
  }): void;
}

/**
 * @param options.defaultMetrics Node's process metrics; off in `sluice start`'s worker thread,
 *   whose registry is merged into the API thread's (one process, counted once).
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): SluiceMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // Scrape-time sources, refreshed once per scrape. prom-client collects all metrics concurrently,
  // so every gauge fed by a source awaits the same refresh: a scrape reports this scrape's values,
  // not the previous one's (and the first scrape is not empty).
  const collectors: Array<() => Promise<void>> = [];
  let refreshing: Promise<boolean> | undefined;
  const refresh = (): Promise<boolean> =>
    (refreshing ??= Promise.allSettled(collectors.map((collect) => collect()))
      .then((results) => results.every((result) => result.status === "fulfilled"))
      .finally(() => {
        refreshing = undefined;
      }));
  const collect = async (): Promise<void> => void (await refresh());
  new Gauge({
    name: "sluice_scrape_sources_ok",
    // Merged across threads (sluice start): ok only if every thread's sources answered.
    aggregator: "min",
    help: "1 when every scrape-time source (hub, queue, Redis INFO) answered during the last scrape.",
    registers,
    async collect() {
      this.set((await refresh()) ? 1 : 0);
    },
  });
  const viewers = new Gauge({ name: "sluice_stream_viewers", help: "Open SSE viewers in this API process.", registers });
  const streams = new Gauge({ name: "sluice_streams_active", help: "Streams with at least one local viewer in this API process.", registers, collect });
  const replayed = new Counter({ name: "sluice_replayed_entries_total", help: "Entries sent from the log rather than live (late joins, resumes, catch-up).", registers });
  const resumes = new Counter({ name: "sluice_resumes_total", help: "Viewers that joined with a cursor.", registers });
  const gaps = new Counter({ name: "sluice_gaps_recovered_total", help: "Log reads that recovered entries notifications had not delivered.", labelNames: ["reason"], registers });
  const gapEntries = new Counter({ name: "sluice_gap_entries_recovered_total", help: "Entries recovered from the log after a gap.", labelNames: ["reason"], registers });
  const slow = new Counter({ name: "sluice_slow_consumer_actions_total", help: "Slow-consumer pauses, resumes and closes.", labelNames: ["action"], registers });
  const delivery = new Histogram({
    name: "sluice_chunk_delivery_seconds",
    help: "Sluice's own added latency per chunk in the API: notification received to SSE bytes written to every live viewer.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers,
  });
  const flushToSse = new Histogram({
    name: "sluice_flush_to_sse_seconds",
    help:
      "Sluice's own added latency per flush of chunks, across processes: the worker's wall clock when it appended the chunks to the log, " +
      "to the API writing them to live SSE viewers (replays are not counted). Assumes worker and API clocks agree (same host or NTP); skew shows up here, negative values count as 0.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers,
  });
  const queueJobs = new Gauge({
    name: "sluice_queue_jobs",
    help:
      "Generation jobs by queue state: waiting, active, delayed, failed (BullMQ counts), and stalled = active jobs whose lock has expired " +
      "(their worker died or froze for over JOB_LOCK_DURATION_MS and no worker's stalled check, every JOB_STALLED_INTERVAL_MS, has re-queued them yet).",
    labelNames: ["state"],
    registers,
    collect,
  });
  const redisInfo = new Gauge({ name: "sluice_redis_info", help: "Redis health from INFO: used_memory bytes, connected_clients, instantaneous_ops_per_sec.", labelNames: ["field"], registers, collect });

  const metrics: SluiceMetrics = {
    registry,
    stream: {
      viewers: (delta) => viewers.inc(delta),
      replayed: (entries) => replayed.inc(entries),
      resumed: () => resumes.inc(),
      gapRecovered: (reason, entries) => {
        gaps.inc({ reason });
        gapEntries.inc({ reason }, entries);
      },
      slowConsumer: (action) => slow.inc({ action }),
      deliveryLatency: (milliseconds) => delivery.observe(milliseconds / 1000),
      flushToSse: (milliseconds) => flushToSse.observe(milliseconds / 1000),
    },
    providerTimeToFirstToken: new Histogram({
      name: "sluice_provider_time_to_first_token_seconds",
      help: "Provider request start to its first token, per generation attempt.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    chunksWritten: new Counter({ name: "sluice_text_deltas_written_total", help: "Text deltas written to stream logs by this worker.", registers }),
    bytesWritten: new Counter({ name: "sluice_text_bytes_written_total", help: "UTF-8 bytes of text written to stream logs by this worker.", registers }),
    generations: new Counter({ name: "sluice_generations_total", help: "Generations finished by this worker, by final status.", labelNames: ["status"], registers }),
    jobsStalled: new Counter({
      name: "sluice_jobs_stalled_total",
      help: "Generation jobs this worker's stalled check found with an expired lock (their worker died or froze) and re-queued as a new attempt, or failed past JOB_ATTEMPTS.",
      registers,
    }),
    contextTurnsLeftOut: new Counter({
      name: "sluice_context_turns_left_out_total",
      help: "Turns of conversation history left out of generation attempts' prompts to fit the model's context budget (CONTEXT_BUDGET_TOKENS): the oldest first.",
      registers,
    }),
    contextTrimmed: new Counter({
      name: "sluice_context_trimmed_total",
      help: "Generation attempts whose prompt left turns of the history out to fit the model's context budget.",
      registers,
    }),
    redisErrors: new Counter({ name: "sluice_redis_errors_total", help: "Redis connection errors seen by this process.", registers }),
    postgresErrors: new Counter({ name: "sluice_postgres_errors_total", help: "PostgreSQL pool errors seen by this process.", registers }),
    addScrapeSources: (sources) => {
      if (sources.hubStats) {
        const read = sources.hubStats;
        collectors.push(() => {
          streams.set(read().streams);
          return Promise.resolve();
        });
      }
      if (sources.queueCounts) {
        const read = sources.queueCounts;
        collectors.push(async () => {
          for (const [state, value] of Object.entries(await read())) queueJobs.set({ state }, value);
        });
      }
      if (sources.redis) {
        const redis = sources.redis;
        collectors.push(async () => {
          const info = await redis.info();
          for (const field of ["used_memory", "connected_clients", "instantaneous_ops_per_sec"]) {
            const match = new RegExp(`^${field}:(\\d+)`, "m").exec(info);
            if (match?.[1]) redisInfo.set({ field }, Number(match[1]));
          }
        });
      }
    },
  };
  return metrics;
}
