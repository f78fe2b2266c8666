import { Agent } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { findFreePort } from "../../src/embedded/free-port.ts";
import { databaseRoles, type BenchServices } from "./bench-services.ts";
import { requestJson } from "./open-sse.ts";
import type { WatchedProcess } from "./process-stats.ts";
import { httpReady, spawnServer, type ServerProcess } from "./spawn-server.ts";

export type SystemName = "sluice" | "polling" | "pubsub" | "resumable" | "direct";

export const systemLabels: Record<SystemName, string> = {
  sluice: "Sluice (api + worker)",
  polling: "seed before: PG polling 100 ms",
  pubsub: "seed after: RPUSH+PUBLISH",
  resumable: "vercel resumable-stream",
  direct: "floor: direct stream",
};

export interface PreparedSystem {
  baseUrl: string;
  kind: "sluice" | "baseline";
  sessionFile?: string;
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
  /** `node --cpu-prof` for Sluice's processes; profiles land in resultsDirectory/profiles. */
  profile: boolean;
  logLevel: string;
  /** Extra environment for Sluice's processes (e.g. DB_POOL_SIZE), from --sluice-env=KEY:VALUE,... */
  sluiceEnv: Record<string, string>;
}

export async function createSystem(name: SystemName, context: SystemContext): Promise<SystemUnderTest> {
  return name === "sluice" ? createSluice(context) : createBaseline(name, context);
}

const scripts: Record<Exclude<SystemName, "sluice">, string> = {
  polling: "bench/baselines/polling-server.ts",
  pubsub: "bench/baselines/pubsub-server.ts",
  resumable: "bench/baselines/resumable-stream-server.ts",
  direct: "bench/baselines/direct-server.ts",
};

async function createBaseline(name: Exclude<SystemName, "sluice">, context: SystemContext): Promise<SystemUnderTest> {
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
  const prepared: PreparedSystem = { baseUrl: `http://127.0.0.1:${port}`, kind: "baseline", processes: [{ name, pid: server.pid }] };
  return { name, prepare: () => Promise.resolve(prepared), stopGenerator: () => Promise.resolve(prepared), stop: () => server.stop() };
}

async function createSluice(context: SystemContext): Promise<SystemUnderTest> {
  const { services, resultsDirectory } = context;
  const port = await findFreePort();
  const shared = {
    REDIS_URL: services.redis.url,
    REDIS_KEY_PREFIX: "bench:",
    AUTH_SECRET: "bench-secret-bench-secret-bench-secret-0123",
    LLM_PROVIDER: "simulated",
    SIMULATED_STAMP_TOKENS: "true",
    LOG_LEVEL: context.logLevel,
    ENABLE_WEB_UI: "false",
    // The per-user limits protect a shared service from one user; the load client is one user.
    LIMIT_GENERATIONS_PER_USER: "1000000",
    LIMIT_OPEN_STREAMS_PER_USER: "1000000",
    LIMIT_MESSAGES_PER_MINUTE: "1000000",
    WORKER_CONCURRENCY: "20000",
    ...context.sluiceEnv,
  };
  const profileArgs = (role: string): string[] =>
    context.profile ? ["--cpu-prof", "--cpu-prof-dir", join(resultsDirectory, "profiles"), "--cpu-prof-name", `${role}-${Date.now()}.cpuprofile`] : [];
  const api = await spawnServer({
    name: "sluice-api",
    script: "src/main/cli.ts",
    args: ["api"],
    env: { ...shared, HOST: "127.0.0.1", PORT: String(port), DATABASE_URL: services.databaseUrl(databaseRoles.api, "sluice_bench") },
    logFile: join(resultsDirectory, "logs", "sluice-api.log"),
    execArgv: profileArgs("api"),
    ready: httpReady(`http://127.0.0.1:${port}/readyz`),
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const sessionFile = join(resultsDirectory, "logs", "sluice-session.json");
  await prepareSession(baseUrl, context.conversations, sessionFile);

  let worker: ServerProcess | undefined;
  const startWorker = async (tokensPerSecond: number, tokenCount: number): Promise<ServerProcess> =>
    spawnServer({
      name: "sluice-worker",
      script: "src/main/cli.ts",
      args: ["worker"],
      env: {
        ...shared,
        // Readiness is read from the worker's "worker started" line, an info line.
        LOG_LEVEL: context.logLevel === "silent" || context.logLevel === "warn" || context.logLevel === "error" ? "info" : context.logLevel,
        DATABASE_URL: services.databaseUrl(databaseRoles.worker, "sluice_bench"),
        SIMULATED_TOKENS_PER_SECOND: String(tokensPerSecond),
        SIMULATED_TOKEN_COUNT: String(tokenCount),
      },
      logFile: join(resultsDirectory, "logs", `sluice-worker-${tokensPerSecond}.log`),
      execArgv: profileArgs(`worker-${tokensPerSecond}`),
      ready: (log) => Promise.resolve(log().includes('"msg":"worker started"')),
    });
  return {
    name: "sluice",
    prepare: async (tokensPerSecond, tokenCount) => {
      await worker?.stop();
      worker = await startWorker(tokensPerSecond, tokenCount);
      return {
        baseUrl,
        kind: "sluice",
        sessionFile,
        processes: [
          { name: "sluice-api", pid: api.pid },
          { name: "sluice-worker", pid: worker.pid },
        ],
      };
    },
    stopGenerator: async () => {
      await worker?.stop();
      worker = undefined;
      return { baseUrl, kind: "sluice", sessionFile, processes: [{ name: "sluice-api", pid: api.pid }] };
    },
    stop: async () => {
      await worker?.stop();
      await api.stop();
    },
  };
}

/** One user and `count` conversations, created before any measurement (one active reply per conversation). */
async function prepareSession(baseUrl: string, count: number, file: string): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const registered = (await requestJson(`${baseUrl}/api/auth/register`, {
    agent,
    method: "POST",
    body: { email: `bench-${Date.now()}@example.com`, password: "bench-password" },
  })) as { token: string };
  const headers = { Authorization: `Bearer ${registered.token}` };
  const conversationIds: string[] = new Array<string>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const index = next++;
        const created = (await requestJson(`${baseUrl}/api/conversations`, { agent, method: "POST", body: {}, headers })) as { id: string };
        conversationIds[index] = created.id;
      }
    }),
  );
  agent.destroy();
  writeFileSync(file, JSON.stringify({ token: registered.token, conversationIds }));
}
