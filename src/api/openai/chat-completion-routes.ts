import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { ChatCompletionsService } from "../../chat/chat-completions-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import { callRedis } from "../../errors/dependency-failure.ts";
import type { OpenStreamLease, OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import { sseHeaders, type StreamHub } from "../../streaming/index.ts";
import type { Clock } from "../../time/clock.ts";
import type { App } from "../app-type.ts";
import { text } from "../schemas.ts";
import { chatCompletionBody, toCompletionRequest } from "./chat-completion-request.ts";
import { chatCompletion, completionIdOf, createChunkStream, createCompletionCollector, generationFailure, taskIdOfCompletion, toUsage, type CompletionIdentity } from "./chat-completion-format.ts";
import { openAiErrorBody } from "./openai-errors.ts";
import { apiKeyUser } from "./api-key-user.ts";
import { watchGeneration } from "./watch-generation.ts";

export interface ChatCompletionRouteDependencies {
  completions: ChatCompletionsService;
  hub: StreamHub;
  /** The open-stream slots of README "Limits", shared with `/api/stream`. */
  leases: OpenStreamLeases;
  leaseRenewMs: number;
  heartbeatMs: number;
  clock: Pick<Clock, "wallClockMs">;
}

/**
 * `POST /v1/chat/completions` and `GET /v1/chat/completions/{id}`. Every call is a Sluice
 * generation in a worker (chat-completions-service.ts); the answer, streamed or not, is read
 * from its log through the hub (PROTOCOL.md section 10), so a client that goes away stops only
 * its own reading, never the generation.
 */
export function registerChatCompletionRoutes(v1: App, dependencies: ChatCompletionRouteDependencies): void {
  const { completions, hub } = dependencies;

  /** One open-stream slot of the key's user for as long as the answer is being read (README "Limits"). */
  const holdLease = async (userId: string): Promise<() => void> => {
    const lease: OpenStreamLease = await callRedis(() => dependencies.leases.acquire(userId));
    const renewal = setInterval(() => void lease.renew().catch(() => undefined), dependencies.leaseRenewMs);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      clearInterval(renewal);
      void lease.release().catch(() => undefined);
    };
  };

  v1.post(
    "/chat/completions",
    { schema: { tags: ["openai"], summary: "OpenAI Chat Completions (stream or not); every call is a durable Sluice generation", body: chatCompletionBody } },
    async (request, reply) => {
      const userId = apiKeyUser(request).id;
      const completionRequest = toCompletionRequest(request.body);
      const release = await holdLease(userId);
      try {
        const { taskId } = await completions.start(userId, completionRequest);
        const identity: CompletionIdentity = { id: completionIdOf(taskId), created: Math.floor(dependencies.clock.wallClockMs() / 1000), model: request.body.model };
        if (request.body.stream === true) {
          await streamCompletion(reply, taskId, identity, request.body.stream_options?.include_usage === true, release);
          return reply;
        }
        return await collectCompletion(reply, taskId, identity);
      } finally {
        // Idempotent: a streamed answer has released it already when its response closed.
        release();
      }
    },
  );

  v1.get(
    "/chat/completions/:id",
    { schema: { tags: ["openai"], summary: "A chat completion created with store: true", params: z.object({ id: text().max(100) }) } },
    async (request, reply) => {
      const taskId = taskIdOfCompletion(request.params.id);
      if (!taskId) throw new SluiceError("NOT_FOUND", "No such chat completion.");
      const stored = await completions.find(apiKeyUser(request).id, taskId);
      if (stored.status === "pending" || stored.status === "streaming") throw new SluiceError("GENERATION_IN_PROGRESS", "This chat completion is still being generated; retry when it has finished.");
      const identity: CompletionIdentity = { id: request.params.id, created: Math.floor(stored.createdAt.getTime() / 1000), model: stored.model ?? "" };
      if (stored.status === "failed") {
        const failure = generationFailure({ type: "end", status: "failed", error: { code: stored.errorCode ?? "INTERNAL", message: "The generation failed." } });
        return reply.status(failure.status).send(failure.body);
      }
      const usage = stored.inputTokens === null || stored.outputTokens === null ? null : toUsage(stored.inputTokens, stored.outputTokens);
      return chatCompletion(identity, { text: stored.content, usage, finishReason: "stop" });
    },
  );

  /** Reads the whole log, then answers once; the client leaving stops only the reading. */
  const collectCompletion = async (reply: FastifyReply, taskId: string, identity: CompletionIdentity): Promise<unknown> => {
    const collector = createCompletionCollector();
    const watch = await watchGeneration({ hub, taskId, onEntries: (entries) => (collector.push(entries), true) });
    const onClose = (): void => watch.close();
    reply.raw.once("close", onClose);
    try {
      if (reply.raw.closed || reply.raw.destroyed) watch.close();
      else watch.start();
      await watch.done;
    } finally {
      reply.raw.off("close", onClose);
      watch.close();
    }
    const end = collector.end;
    if (!end) throw new SluiceError("SERVICE_UNAVAILABLE", "The server stopped reading the generation; retry.", { details: { retryAfterSeconds: 1 } });
    if (end.status === "failed") {
      const failure = generationFailure(end);
      return reply.status(failure.status).send(failure.body);
    }
    return chatCompletion(identity, { text: collector.text, usage: collector.usage, finishReason: "stop" });
  };

  /** Server-sent `chat.completion.chunk`s as the log grows, then `[DONE]`; heartbeat comments meanwhile. */
  const streamCompletion = async (reply: FastifyReply, taskId: string, identity: CompletionIdentity, includeUsage: boolean, release: () => void): Promise<void> => {
    const chunks = createChunkStream(identity, { includeUsage });
    const response = reply.raw;
    const watch = await watchGeneration({
      hub,
      taskId,
      onEntries: (entries) => {
        const text = chunks.push(entries);
        const accepted = text === "" || response.write(text);
        if (chunks.finished) response.end();
        return accepted;
      },
    });
    reply.hijack();
    const onDrain = (): void => watch.resume();
    const heartbeat = setInterval(() => {
      if (!response.writableEnded && !response.writableNeedDrain) response.write(": ping\n\n");
    }, dependencies.heartbeatMs);
    let resolveFinished: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      resolveFinished = resolve;
    });
    const onClose = (): void => {
      clearInterval(heartbeat);
      response.off("drain", onDrain);
      watch.close();
      release();
      resolveFinished();
    };
    response.once("close", onClose);
    // A client that hung up while the generation was being accepted: its close event is gone already.
    if (response.closed || response.destroyed) {
      onClose();
      return;
    }
    response.on("drain", onDrain);
    response.writeHead(200, sseHeaders);
    void watch.done.then((outcome) => {
      // The hub let go before `end` (this process is shutting down): OpenAI's stream has no cursor
      // to resume from, so the client is told to retry, and the generation runs on.
      if (outcome === "closed" && !response.writableEnded) {
        response.end(`data: ${JSON.stringify(openAiErrorBody(503, "The server stopped streaming this generation; retry.", "SERVICE_UNAVAILABLE"))}\n\n`);
      }
    });
    watch.start();
    await finished;
  };
}
