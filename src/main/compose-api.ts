import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { App } from "../api/app-type.ts";
import { createRequireUser } from "../api/auth/authenticate.ts";
import { registerAuthRoutes } from "../api/auth/auth-routes.ts";
import { registerUiChatRoutes } from "../api/chat-sdk/ui-chat-routes.ts";
import { registerConversationRoutes } from "../api/conversations/conversation-routes.ts";
import { registerDocs } from "../api/docs/register-docs.ts";
import { registerMeRoutes } from "../api/me/me-routes.ts";
import { registerApiKeyRoutes } from "../api/openai/api-key-routes.ts";
import { registerOpenAiApi } from "../api/openai/register-openai-api.ts";
import { createAnswerStarted, type StartedStreamDependencies } from "../api/streams/started-stream.ts";
import { registerStreamRoutes } from "../api/streams/stream-routes.ts";
import { registerWebUi } from "../api/web/register-web-ui.ts";
import { createPasswordHasher } from "../auth/password-hashing.ts";
import { startPurgeExpiredRecords } from "../auth/purge-expired-records.ts";
import { callRedis } from "../errors/dependency-failure.ts";
import { createSessionCache, type RevocationSubscriber } from "../auth/session-cache.ts";
import { createStreamTokenSigner } from "../auth/stream-read-tokens.ts";
import { createAccountsService } from "../chat/accounts-service.ts";
import { createApiKeysService } from "../chat/api-keys-service.ts";
import { createChatCompletionsService } from "../chat/chat-completions-service.ts";
import { createConversationsService } from "../chat/conversations-service.ts";
import { createGenerationsService } from "../chat/generations-service.ts";
import { createUiChatsService } from "../chat/ui-chats-service.ts";
import type { Config } from "../config/config.ts";
import { SluiceError } from "../errors/catalog.ts";
import { createConcurrencyGate } from "../limits/concurrency-gate.ts";
import { createFixedWindowLimiter } from "../limits/fixed-window-limiter.ts";
import { createLoginAttempts } from "../limits/login-attempts.ts";
import { createOpenStreamLeases } from "../limits/open-stream-leases.ts";
import { requestCancel } from "../queue/cancel-signals.ts";
import type { GenerationQueue } from "../queue/generation-queue.ts";
import { createApiKeysRepository } from "../storage/api-keys-repository.ts";
import { createConversationsRepository } from "../storage/conversations-repository.ts";
import type { Db } from "../storage/database.ts";
import { createIdempotencyRepository } from "../storage/idempotency-repository.ts";
import { createMessagesRepository } from "../storage/messages-repository.ts";
import { createSessionsRepository } from "../storage/sessions-repository.ts";
import { createStoredCompletionsRepository } from "../storage/stored-completions-repository.ts";
import { createUsersRepository } from "../storage/users-repository.ts";
import type { StreamHub, StreamLog } from "../streaming/index.ts";
import type { Clock } from "../time/clock.ts";

const webDist = fileURLToPath(new URL("../../web/dist", import.meta.url));

/** Builds the API's services from their ports and returns the feature registrations for buildApp. */
export function composeApiFeatures(options: {
  config: Config;
  db: Db;
  redis: Redis;
  queue: GenerationQueue;
  streamLog: StreamLog;
  hub: StreamHub;
  /** The process's pub/sub connection (the hub's), for session revocations. */
  subscriber: RevocationSubscriber;
  logger: Logger;
  clock: Clock;
}): Array<(app: App) => Promise<void> | void> {
  const { config, db, redis, clock } = options;
  const keyPrefix = config.redis.keyPrefix;
  const users = createUsersRepository(db);
  const sessions = createSessionsRepository(db);
  const conversationsRepository = createConversationsRepository(db);
  const messages = createMessagesRepository(db);
  const streamTokens = createStreamTokenSigner(config.auth.secret, config.auth.streamTokenTtlSeconds);
  const streamUrl = (taskId: string, userId: string): string =>
    `/api/stream/${encodeURIComponent(taskId)}?token=${encodeURIComponent(streamTokens.sign(taskId, userId, clock.wallClockMs()))}`;

  const storedAccounts = createAccountsService({
    users,
    sessions,
    sessionTtlHours: config.auth.sessionTtlHours,
    sessionIdleTimeoutMinutes: config.auth.sessionIdleTimeoutMinutes,
    passwords: createPasswordHasher(config.auth.passwordHashing),
    hashGate: createConcurrencyGate({ running: config.limits.passwordHashes, queued: config.limits.passwordHashQueue, code: "SIGN_IN_BUSY", retryAfterSeconds: 1 }),
    loginAttempts: createLoginAttempts({ redis, keyPrefix, limit: config.limits.loginAttemptsPerAccount, windowMs: config.limits.loginAccountWindowMinutes * 60_000 }),
    clock,
    onBackgroundError: (error) => options.logger.warn({ err: error }, "session last-use update failed"),
  });
  // Authentication costs no PostgreSQL round trip while a session is cached (SESSION_CACHE_TTL_MS),
  // from its sign-in on; sign-outs revoke it in every API process (src/auth/session-cache.ts).
  const sessionCache = createSessionCache({
    load: (token: string) => storedAccounts.findSession(token),
    ttlMs: config.auth.sessionCacheTtlMs,
    maxEntries: 100_000,
    channel: `${keyPrefix}sessions:revoked`,
    subscriber: options.subscriber,
    publisher: redis,
    clock,
  });
  const accounts: typeof storedAccounts = {
    ...storedAccounts,
    authenticate: (token) => sessionCache.authenticate(token),
    register: (email, password) => sessionCache.remember(() => storedAccounts.register(email, password)),
    login: (email, password) => sessionCache.remember(() => storedAccounts.login(email, password)),
    logout: async (token) => {
      const ended = await storedAccounts.logout(token);
      // Only a real session is announced: junk tokens sent here would otherwise keep every
      // process from caching anything (each revocation voids the lookups in flight).
      // Redis down at this moment: 503, and the publish is retried for one TTL (session-cache.ts).
      if (ended) await callRedis(() => sessionCache.revokeToken(token));
      return ended;
    },
    logoutEverywhere: async (userId) => {
      await storedAccounts.logoutEverywhere(userId);
      await callRedis(() => sessionCache.revokeUser(userId));
    },
  };
  const authenticate = (token: string) => accounts.authenticate(token);
  const requireUser = createRequireUser(authenticate);
  const conversations = createConversationsService({
    conversations: conversationsRepository,
    messages,
    streamUrl,
    discardStreams: async (tasks) => {
      // A generation still running (or queued, or its log still live) gets a tombstone instead of
      // losing its log: an unfenced `end` {cancelled, CONVERSATION_DELETED} (PROTOCOL.md 3.1) that
      // every viewer receives at once, and that makes the worker's beginAttempt, appends and `end`
      // refused (the log has ended), so nothing is written after it or recreated; its final save
      // finds no row. Then the cancel (the worker stops at once) and the queued job goes. The
      // tombstone, which still holds the deleted reply, lives only long enough for reconnecting
      // viewers to read its end; a finished task's log goes at once.
      const tombstoneTtlMs = 60_000;
      const tombstone = { status: "cancelled" as const, error: { code: "CONVERSATION_DELETED", message: new SluiceError("CONVERSATION_DELETED").message } };
      for (const { taskId, active } of tasks) {
        if (active || (await options.streamLog.inspect(taskId))?.state === "live") {
          await options.streamLog.forceEnd(taskId, tombstone);
          await options.streamLog.expire(taskId, tombstoneTtlMs);
          await requestCancel(redis, keyPrefix, taskId);
          // 0 (nothing removed) while a worker holds it: that run is refused by the tombstone.
          await options.queue.remove(taskId);
        } else {
          await options.streamLog.remove(taskId);
        }
      }
    },
  });
  const generations = createGenerationsService({
    db,
    redis,
    keyPrefix,
    queue: options.queue,
    messages,
    messageLimiter: createFixedWindowLimiter({ redis, keyPrefix, name: "messages", limit: config.limits.messagesPerMinute, windowMs: 60_000, code: "RATE_LIMITED" }),
    limits: { generationsPerUser: config.limits.generationsPerUser, messageChars: config.limits.messageChars },
    models: { defaultModel: config.llm.defaultModel, allowed: config.llm.allowedModels },
    streamUrl,
  });
  const authLimiter = createFixedWindowLimiter({ redis, keyPrefix, name: "auth", limit: config.limits.authPerMinute, windowMs: 60_000, code: "RATE_LIMITED" });
  const leaseMs = Math.max(3 * config.stream.heartbeatIntervalMs, 30_000);
  /** What serves Sluice's own SSE streams: `GET streamUrl` and a POST that streams its generation. */
  const nativeStreams = (): StartedStreamDependencies => ({
    hub: options.hub,
    generations,
    leases: createOpenStreamLeases({ redis, keyPrefix, limit: config.limits.openStreamsPerUser, leaseMs, clock }),
    leaseRenewMs: Math.floor(leaseMs / 3),
    heartbeatMs: config.stream.heartbeatIntervalMs,
    retryMs: config.stream.retryMs,
    retryJitterMs: config.stream.retryJitterMs,
    clock,
  });

  return [
    registerDocs,
    (app) => registerAuthRoutes(app, { accounts, authLimiter, requireUser }),
    (app) => {
      const purge = startPurgeExpiredRecords({
        sessions,
        idempotencyKeys: createIdempotencyRepository(db),
        sessionIdleTimeoutMinutes: config.auth.sessionIdleTimeoutMinutes,
        idempotencyKeyTtlHours: config.idempotencyKeyTtlHours,
        intervalMs: 60_000,
        batchSize: 500,
        maxBatches: 10,
        clock,
        onError: (error) => options.logger.warn({ err: error }, "purge of expired sessions and idempotency keys failed"),
      });
      app.addHook("onClose", (_instance, done) => {
        purge.stop();
        done();
      });
    },
    (app) => registerMeRoutes(app, { accounts, requireUser, models: config.llm.allowedModels, usageTotals: (userId) => conversations.usageTotals(userId) }),
    (app) => {
      // The OpenAI-compatible API (README "Use Sluice from the OpenAI SDK"): keys managed under
      // /api/me, used on /v1; its calls are ordinary generations with this user's limits.
      const apiKeys = createApiKeysService({
        apiKeys: createApiKeysRepository(db),
        maxKeysPerUser: 50,
        clock,
        onBackgroundError: (error) => options.logger.warn({ err: error }, "API key last-use update failed"),
      });
      registerApiKeyRoutes(app, { apiKeys, requireUser });
      return registerOpenAiApi(app, {
        apiKeys,
        completions: createChatCompletionsService({
          db,
          conversations: conversationsRepository,
          generations,
          storedCompletions: createStoredCompletionsRepository(db),
          models: config.llm.allowedModels,
          limits: { messageChars: config.limits.messageChars, historyTurns: 1_000 },
        }),
        hub: options.hub,
        leases: createOpenStreamLeases({ redis, keyPrefix, limit: config.limits.openStreamsPerUser, leaseMs, clock }),
        leaseRenewMs: Math.floor(leaseMs / 3),
        heartbeatMs: config.stream.heartbeatIntervalMs,
        models: config.llm.allowedModels,
        clock,
      });
    },
    // The AI SDK's useChat (README "Use Sluice from useChat"): its chats are conversations, its streams the logs.
    (app) =>
      registerUiChatRoutes(app, {
        chats: createUiChatsService({ db, conversations: conversationsRepository, messages, generations }),
        generations,
        requireUser,
        hub: options.hub,
        leases: createOpenStreamLeases({ redis, keyPrefix, limit: config.limits.openStreamsPerUser, leaseMs, clock }),
        leaseRenewMs: Math.floor(leaseMs / 3),
        heartbeatMs: config.stream.heartbeatIntervalMs,
        clock,
      }),
    (app) =>
      registerConversationRoutes(app, {
        conversations,
        generations,
        requireUser,
        messageChars: config.limits.messageChars,
        answerStarted: createAnswerStarted(nativeStreams()),
      }),
    (app) =>
      registerStreamRoutes(app, { ...nativeStreams(), authenticate, requireUser, streamTokens }),
    async (app) => {
      if (config.webUi && !(await registerWebUi(app, webDist))) {
        options.logger.warn({ webDist }, "web UI not built (npm run build:web); serving the API only");
      }
    },
  ];
}
