import { join } from "node:path";
import { findFreePort } from "../../src/embedded/free-port.ts";
import { databaseRoles, type BenchServices } from "./bench-services.ts";
import type { WatchedProcess } from "./process-stats.ts";
import { createSluiceSystem, type SluiceVariant } from "./sluice-system.ts";
import { spawnServer } from "./spawn-server.ts";

export const systemNames = ["sluice", "sluice-openai-start", "sluice-openai-split", "sluice-openai-embedded", "sluice-openai-start-post", "sluice-openai-split-post", "provider-direct", "polling", "pubsub", "resumable", "direct"] as const;
export type SystemName = (typeof systemNames)[number];

export const systemLabels: Record<SystemName, string> = {
  sluice: "Sluice (api + worker, simulated provider in the worker)",
  "sluice-openai-start": "Sluice `start` (one process) <- openai SDK <- OpenAI-compatible server",
  "sluice-openai-split": "Sluice api + worker <- openai SDK <- OpenAI-compatible server",
  "sluice-openai-embedded": "Sluice `start` on embedded PostgreSQL (PGlite), as `npm start` runs <- openai SDK <- OpenAI-compatible server",
  "sluice-openai-start-post": "Sluice `start`, the client reads the stream in its POST's response (Accept: text/event-stream) <- openai SDK <- OpenAI-compatible server",
  "sluice-openai-split-post": "Sluice api + worker, the client reads the stream in its POST's response <- openai SDK <- OpenAI-compatible server",
  "provider-direct": "floor of the real path: the OpenAI-compatible server read directly",
  polling: "seed before: PG polling 100 ms",
  pubsub: "seed after: RPUSH+PUBLISH",
  resumable: "vercel resumable-stream",
  direct: "floor: direct stream",
};

const sluiceVariants: Partial<Record<SystemName, SluiceVariant>> = {
  sluice: { name: "sluice", provider: "simulated", mode: "split" },
  "sluice-openai-start": { name: "sluice-openai-start", provider: "openai", mode: "start" },
  "sluice-openai-split": { name: "sluice-openai-split", provider: "openai", mode: "split" },
  "sluice-openai-embedded": { name: "sluice-openai-embedded", provider: "openai", mode: "start", database: "embedded" },
  "sluice-openai-start-post": { name: "sluice-openai-start-post", provider: "openai", mode: "start", streamInPost: true },
  "sluice-openai-split-post": { name: "sluice-openai-split-post", provider: "openai", mode: "split", streamInPost: true },
};

/** A Sluice system (the product under test), as opposed to a baseline or a floor. */
export const isSluice = (name: string): boolean => name === "sluice" || name.startsWith("sluice-");

export interface PreparedSystem {
  baseUrl: string;
  kind: "sluice" | "baseline" | "provider";
  sessionFile?: string;
  /** Sluice: the client reads each stream in its POST's response instead of a GET of streamUrl after the 202. */
  streamInPost?: boolean;
  /** The system's own processes (Redis and PostgreSQL are added by the runner). */
  processes: WatchedProcess[];
}

export interface SystemUnderTest {
  name: SystemName;
  /** (Re)starts what depends on the pace; Sluice's worker reads it from its environment. */
  prepare(tokensPerSecond: number, tokenCount: number): Promise<PreparedSystem>;
  /** Stops the generating side (Sluice's worker) and says what is left, for the idle-connections measurement. */
  stopGenerator(): Promise<PreparedSystem>;
  stop(): Promise<void>;
}

export interface SystemContext {
  services: BenchServices;
  resultsDirectory: string;
  /** Conversations to prepare for Sluice (the largest step or idle count). */
  conversations: number;
  /** `node --cpu-prof` for Sluice's processes (every Sluice system); profiles land in resultsDirectory/profiles. */
  profile: boolean;
  logLevel: string;
  /** Extra environment for Sluice's processes (e.g. DB_POOL_SIZE), from --sluice-env=KEY:VALUE,... */
  sluiceEnv: Record<string, string>;
  /** --redis=unix: every Sluice system reaches Redis over its unix socket (the embedded one always does, as `npm start`). */
  redisSocket?: boolean;
  /** --provider-http2: the bench provider of Sluice's systems serves h2c, and Sluice reaches it with PROVIDER_HTTP2. */
  providerHttp2?: boolean;
}

export async function createSystem(name: SystemName, context: SystemContext): Promise<SystemUnderTest> {
  const variant = sluiceVariants[name];
  if (variant) return createSluiceSystem(variant, context);
  return createBaseline(name as BaselineName, context);
}

type BaselineName = "provider-direct" | "polling" | "pubsub" | "resumable" | "direct";

const scripts: Record<BaselineName, string> = {
  "provider-direct": "bench/providers/openai-compatible-server.ts",
  polling: "bench/baselines/polling-server.ts",
  pubsub: "bench/baselines/pubsub-server.ts",
  resumable: "bench/baselines/resumable-stream-server.ts",
  direct: "bench/baselines/direct-server.ts",
};

async function createBaseline(name: BaselineName, context: SystemContext): Promise<SystemUnderTest> {
  const port = await findFreePort();
  const server = await spawnServer({
    name,
    script: scripts[name],
    env: {
      BENCH_PORT: String(port),
      REDIS_URL: context.services.redis.url,
      DATABASE_URL: context.services.databaseUrl(databaseRoles.polling, "bench_polling"),
    },
    logFile: join(context.resultsDirectory, "logs", `${name}.log`),
    ready: (log) => Promise.resolve(log().includes('"listening"')),
  });
  const kind = name === "provider-direct" ? "provider" : "baseline";
  const processName = name === "provider-direct" ? "openai-provider" : name;
  const prepared: PreparedSystem = { baseUrl: `http://127.0.0.1:${port}`, kind, processes: [{ name: processName, pid: server.pid }] };
  return { name, prepare: () => Promise.resolve(prepared), stopGenerator: () => Promise.resolve(prepared), stop: () => server.stop() };
}
