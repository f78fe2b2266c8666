/**
 * Sluice as a conformance target: the real app started in this process
 * (`startRuntime`), so every request goes through the real route
 * (src/api/streams/stream-routes.ts), authentication, open-stream leases, hub
 * and cancel path.
 *
 * Two servers, each on its own database and key prefix:
 * - scripted streams: an API without a worker. Tasks are accepted through the
 *   real API (`POST …/messages`), so the route finds them in PostgreSQL, and no
 *   worker ever takes them; the test plays the generation through the real
 *   StreamLog, saves the final status through the real messages repository
 *   as the worker's final save would, and removes the job at the end as a
 *   finished job leaves the queue (the route answers 410 from PostgreSQL only
 *   once the job is no longer pending).
 * - generations: API and worker (`start`) with the simulated provider, slow
 *   enough to be cancelled mid-stream.
 */
import { Redis } from "ioredis";
import { createGenerationQueue } from "../../../src/queue/generation-queue.ts";
import { openDatabase } from "../../../src/storage/database.ts";
import { createMessagesRepository, type FinalResult } from "../../../src/storage/messages-repository.ts";
import { createStreamLog } from "../../../src/streaming/stream-log.ts";
import { registerUser, type ChatUser } from "../../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../../support/sluice/start-sluice.ts";
import type { ConformanceTarget, ScriptedStream, StartConformanceTarget, StreamEndOutcome, StreamEndpoint } from "./conformance-target.ts";

const heartbeatMs = 150;
const openStreamsPerUser = 4;

/** Settings both servers share; the protocol's retry defaults (2,000 ms + up to 1,000 ms) stay as shipped. */
const protocolSettings: Record<string, string> = {
  HEARTBEAT_INTERVAL_MS: String(heartbeatMs),
  LIMIT_OPEN_STREAMS_PER_USER: String(openStreamsPerUser),
};

/** Starts both servers; `stop` closes them and everything the target opened. */
export const startSluiceTarget: StartConformanceTarget = async () => {
  const [scripted, generating] = await Promise.all([
    startSluice({ label: "conformance", topology: { apis: 1, workers: 0 }, env: protocolSettings }),
    // ~100 s of text at 20 tokens/s: a cancel always arrives mid-stream. Stopping does not wait for a generation.
    startSluice({ label: "conformance_live", env: { ...protocolSettings, SIMULATED_TOKENS_PER_SECOND: "20", SIMULATED_TOKEN_COUNT: "2000", SHUTDOWN_GRACE_MS: "0" } }),
  ]);
  const redis = new Redis(scripted.env.REDIS_URL ?? "", { maxRetriesPerRequest: null });
  const log = createStreamLog({ redis, keyPrefix: scripted.env.REDIS_KEY_PREFIX ?? "" });
  // The queued job the scripted "worker" plays: finished (here: removed) at `end`, as a real worker's job would be.
  const queue = createGenerationQueue(redis, scripted.env.REDIS_KEY_PREFIX ?? "");
  const database = await openDatabase({ url: scripted.env.DATABASE_URL, dataDirectory: scripted.env.DATA_DIR ?? "", poolSize: 2, statementTimeoutMs: 10_000 });
  const messages = createMessagesRepository(database.db);
  const [scriptedStranger, generatingStranger] = await Promise.all([registerUser(scripted.url, "stranger"), registerUser(generating.url, "stranger")]);

  const target: ConformanceTarget = {
    retryRangeMs: [2_000, 3_000],
    heartbeatMs,
    openStreamsPerUser,
    async createStream() {
      const endpoint = await acceptGeneration(scripted, scriptedStranger);
      const { taskId } = endpoint;
      let attempt = 0;
      const stream: ScriptedStream = {
        ...endpoint,
        async begin(model) {
          attempt = (await log.beginAttempt(taskId, model === undefined ? {} : { model })).attempt;
        },
        async text(...deltas) {
          for (const delta of deltas) await log.append(taskId, attempt, [{ type: "text-delta", delta }]);
        },
        async end(outcome) {
          // The worker's order: the final save, then `end` into the log.
          await messages.forceFinish(taskId, finalResult(outcome));
          await log.end(taskId, attempt, outcome);
          await queue.remove(taskId);
        },
        async retry() {
          attempt = (await log.beginAttempt(taskId)).attempt;
        },
        async loseLog() {
          await redis.del(log.keys(taskId).log, log.keys(taskId).meta);
        },
        async expireLog() {
          await redis.del(log.keys(taskId).log, log.keys(taskId).meta);
        },
      };
      return stream;
    },
    startGeneration: async () => await acceptGeneration(generating, generatingStranger),
  };
  return {
    target,
    stop: async () => {
      await queue.close();
      redis.disconnect();
      await database.close();
      await Promise.all([scripted.stop(), generating.stop()]);
    },
  };
};

/** A new user sends one message through the real API: the task is queued, and its owner and read token known. */
async function acceptGeneration(server: InProcessSluice, stranger: ChatUser): Promise<StreamEndpoint> {
  const owner = await registerUser(server.url, "conformance");
  const conversation = await owner.createConversation();
  const accepted = await owner.send(conversation.id, "Tell me a story.");
  const readToken = new URL(accepted.streamUrl, server.url).searchParams.get("token");
  if (readToken === null) throw new Error(`no read token in streamUrl ${accepted.streamUrl}`);
  return {
    baseUrl: server.url,
    taskId: accepted.taskId,
    authHeaders: { Authorization: `Bearer ${owner.token}` },
    readToken,
    strangerHeaders: { Authorization: `Bearer ${stranger.token}` },
  };
}

function finalResult(outcome: StreamEndOutcome): FinalResult {
  return {
    status: outcome.status,
    content: "",
    lastSeq: null,
    inputTokens: null,
    outputTokens: null,
    errorCode: outcome.error?.code ?? null,
    errorMessage: outcome.error?.message ?? null,
  };
}
