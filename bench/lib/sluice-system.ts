import { Agent } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFreePort } from "../../src/embedded/free-port.ts";
import { databaseRoles } from "./bench-services.ts";
import { eventLoopProbeModule, resetProbeFile } from "./event-loop-probe.ts";
import { requestJson } from "./open-sse.ts";
import type { WatchedProcess } from "./process-stats.ts";
import { httpReady, spawnServer, type ServerProcess } from "./spawn-server.ts";
import type { PreparedSystem, SystemContext, SystemName, SystemUnderTest } from "./systems.ts";

/**
 * How one Sluice system runs:
 * - `simulated` + `split`: the product's in-process simulated provider, `sluice api` + `sluice worker`
 *   (the worker restarts per rate: the pace is its environment);
 * - `openai` + `split` / `start`: the real `openai` SDK streaming from bench/providers/openai-compatible-server.ts
 *   in its own process (the pace travels in each message, so nothing restarts per rate),
 *   as `sluice api` + `sluice worker` or as one `sluice start` (API and worker in one process);
 * - `database: "embedded"`: no DATABASE_URL, so `sluice start` runs its embedded PGlite in a data
 *   directory of its own, as `npm start` does (its statements are not in pg_stat_statements).
 */
export interface SluiceVariant {
  name: SystemName;
  provider: "simulated" | "openai";
  mode: "split" | "start";
  database?: "embedded";
  /** The load client sends `Accept: text/event-stream` and reads the stream in the POST's response (PROTOCOL.md 2.4). */
  streamInPost?: boolean;
}

const workerStarted = '"msg":"worker started"';

export async function createSluiceSystem(variant: SluiceVariant, context: SystemContext): Promise<SystemUnderTest> {
  const { services, resultsDirectory } = context;
  const logs = join(resultsDirectory, "logs");
  const database = await services.createDatabase(`sluice_${variant.name.replace(/\W/g, "_")}`);
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // Stopped in reverse order; an embedded system's data directory is the first entry, removed last.
  const started: Array<Pick<ServerProcess, "stop">> = [];
  const stopAll = async (): Promise<void> => {
    for (const server of started.splice(0).reverse()) await server.stop();
  };

  try {
    let provider: ServerProcess | undefined;
    if (variant.provider === "openai") {
      const providerPort = await findFreePort();
      provider = await spawnServer({
        name: "openai-provider",
        script: "bench/providers/openai-compatible-server.ts",
        env: { BENCH_PORT: String(providerPort), ...(context.providerHttp2 === true ? { BENCH_H2C: "true" } : {}) },
        logFile: join(logs, `${variant.name}-provider.log`),
        ready: (log) => Promise.resolve(log().includes('"listening"')),
      });
      started.push(provider);
    }
    const providerEnv: Record<string, string> =
      provider === undefined
        ? { LLM_PROVIDER: "simulated", SIMULATED_STAMP_TOKENS: "true" }
        : {
            LLM_PROVIDER: "openai",
            OPENAI_BASE_URL: `http://127.0.0.1:${/"listening":(\d+)/.exec(provider.log())?.[1] ?? ""}/v1`,
            OPENAI_API_KEY: "sk-bench-not-a-real-key",
            LLM_MODEL: "bench-model",
            ...(context.providerHttp2 === true ? { PROVIDER_HTTP2: "true" } : {}),
          };
    const shared = {
      // `npm start` talks to its managed redis-server over a unix socket; other deployments may not.
      REDIS_URL: (context.redisSocket === true || variant.database === "embedded" ? services.redis.socketUrl : undefined) ?? services.redis.url,
      REDIS_KEY_PREFIX: `bench-${variant.name}:`,
      AUTH_SECRET: "bench-secret-bench-secret-bench-secret-0123",
      ...providerEnv,
      // Readiness of a worker is read from its "worker started" line, an info line.
      LOG_LEVEL: ["silent", "fatal", "error", "warn"].includes(context.logLevel) ? "info" : context.logLevel,
      ENABLE_WEB_UI: "false",
      // The per-user limits protect a shared service from one user; the load client is a few dozen
      // users (prepareSession), each with many more streams than a person would open.
      LIMIT_GENERATIONS_PER_USER: "1000000",
      LIMIT_AUTH_PER_MINUTE: "1000000",
      // Registration is set-up, not measured: the OWASP-strength hash would only slow it down.
      TEST_ONLY_WEAK_PASSWORD_HASHING: "true",
      LIMIT_OPEN_STREAMS_PER_USER: "1000000",
      LIMIT_MESSAGES_PER_MINUTE: "1000000",
      WORKER_CONCURRENCY: "20000",
      ...context.sluiceEnv,
    };
    /** Event-loop delay probe (bench/probes) and, with --profile, node --cpu-prof. */
    const launch = async (role: "api" | "worker" | "start", env: Record<string, string>, suffix = ""): Promise<{ server: ServerProcess; watched: WatchedProcess }> => {
      const name = `sluice-${role}`;
      const loopDelayFile = join(logs, `${variant.name}-${role}.loop-delay.json`);
      resetProbeFile(loopDelayFile);
      // A folder per process, with Node's own file names (…pid.tid.seq): in `start` mode the worker
      // thread writes a profile too, and one fixed --cpu-prof-name let the last thread overwrite the other.
      const profileArgs = context.profile ? ["--cpu-prof", "--cpu-prof-dir", join(resultsDirectory, "profiles", `${variant.name}-${role}${suffix}-${Date.now()}`)] : [];
      const server = await spawnServer({
        name,
        script: "src/main/cli.ts",
        args: [role],
        env: { ...shared, ...env, BENCH_LOOP_DELAY_FILE: loopDelayFile },
        logFile: join(logs, `${variant.name}-${role}${suffix}.log`),
        execArgv: [`--import=${eventLoopProbeModule}`, ...profileArgs],
        ready:
          role === "worker"
            ? (log) => Promise.resolve(log().includes(workerStarted))
            : role === "start"
              ? async (log) => log().includes(workerStarted) && (await httpReady(`${baseUrl}/readyz`)())
              : httpReady(`${baseUrl}/readyz`),
      });
      started.push(server);
      return { server, watched: { name, pid: server.pid, loopDelayFile, threads: true } };
    };
    const providerProcesses: WatchedProcess[] = provider ? [{ name: "openai-provider", pid: provider.pid }] : [];
    const sessionFile = join(logs, `${variant.name}-session.json`);
    const client = { baseUrl, kind: "sluice" as const, sessionFile, ...(variant.streamInPost ? { streamInPost: true } : {}) };

    if (variant.mode === "start") {
      const databaseEnv = variant.database === "embedded" ? embeddedDataDirectory(started) : { DATABASE_URL: services.databaseUrl(databaseRoles.start, database) };
      const start = await launch("start", { HOST: "127.0.0.1", PORT: String(port), ...databaseEnv });
      await prepareSession(baseUrl, context.conversations, sessionFile);
      const prepared: PreparedSystem = { ...client, processes: [start.watched, ...providerProcesses] };
      return {
        name: variant.name,
        prepare: () => Promise.resolve(prepared),
        stopGenerator: () => Promise.reject(new Error(`${variant.name}: API and worker share one process; there is no idle-only API to measure`)),
        stop: stopAll,
      };
    }

    const api = await launch("api", { HOST: "127.0.0.1", PORT: String(port), DATABASE_URL: services.databaseUrl(databaseRoles.api, database) });
    await prepareSession(baseUrl, context.conversations, sessionFile);
    let worker: { server: ServerProcess; watched: WatchedProcess } | undefined;
    const stopWorker = async (): Promise<void> => {
      if (!worker) return;
      await worker.server.stop();
      started.splice(started.indexOf(worker.server), 1);
      worker = undefined;
    };
    const workerEnv = { DATABASE_URL: services.databaseUrl(databaseRoles.worker, database) };
    return {
      name: variant.name,
      prepare: async (tokensPerSecond, tokenCount) => {
        if (variant.provider === "simulated") {
          await stopWorker();
          worker = await launch("worker", { ...workerEnv, SIMULATED_TOKENS_PER_SECOND: String(tokensPerSecond), SIMULATED_TOKEN_COUNT: String(tokenCount) }, `-${tokensPerSecond}`);
        } else {
          worker ??= await launch("worker", workerEnv);
        }
        return { ...client, processes: [api.watched, worker.watched, ...providerProcesses] };
      },
      stopGenerator: async () => {
        await stopWorker();
        return { ...client, processes: [api.watched, ...providerProcesses] };
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** A fresh DATA_DIR for PGlite, removed when the system stops (registered as a stop step). */
function embeddedDataDirectory(started: Array<Pick<ServerProcess, "stop">>): { DATA_DIR: string } {
  const directory = mkdtempSync(join(tmpdir(), "sluice-bench-embedded-"));
  started.unshift({ stop: () => Promise.resolve(rmSync(directory, { recursive: true, force: true })) });
  return { DATA_DIR: directory };
}

/**
 * Streams per bench user: 3, the default LIMIT_GENERATIONS_PER_USER. A burst of starts comes from
 * many users, as it would in production, not from one user holding hundreds of generations.
 */
const conversationsPerUser = 3;

/**
 * `count` conversations over ceil(count / 3) users, created before any measurement (one active
 * reply per conversation).
 */
async function prepareSession(baseUrl: string, count: number, file: string): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const userTokens: string[] = [];
  for (let user = 0; user < Math.ceil(count / conversationsPerUser); user += 1) {
    const registered = (await requestJson(`${baseUrl}/api/auth/register`, {
      agent,
      method: "POST",
      body: { email: `bench-${Date.now()}-${user}@example.com`, password: "bench-password" },
    })) as { token: string };
    userTokens.push(registered.token);
  }
  const conversationIds: string[] = new Array<string>(count);
  const tokens: string[] = Array.from({ length: count }, (_, index) => userTokens[Math.floor(index / conversationsPerUser)] ?? "");
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const index = next++;
        const headers = { Authorization: `Bearer ${tokens[index] ?? ""}` };
        const created = (await requestJson(`${baseUrl}/api/conversations`, { agent, method: "POST", body: {}, headers })) as { id: string };
        conversationIds[index] = created.id;
      }
    }),
  );
  agent.destroy();
  writeFileSync(file, JSON.stringify({ tokens, conversationIds }));
}
