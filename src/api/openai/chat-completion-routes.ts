import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { ChatCompletionsService } from "../../chat/chat-completions-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import { isActiveStatus } from "../../storage/messages-repository.ts";
import type { StreamHub } from "../../streaming/index.ts";
import type { Clock } from "../../time/clock.ts";
import type { App } from "../app-type.ts";
import { text } from "../schemas.ts";
import { chatCompletionBody, toCompletionRequest } from "./chat-completion-request.ts";
import { chatCompletion, completionIdOf, createChunkStream, generationFailure, taskIdOfCompletion, toUsage, type CompletionIdentity } from "./chat-completion-format.ts";
import { openAiErrorBody } from "./openai-errors.ts";
import { apiKeyUser } from "./api-key-user.ts";
import { collectGeneration, holdOpenStreamLease, serveMappedStream } from "./serve-mapped-stream.ts";

export interface ChatCompletionRouteDependencies {
  completions: ChatCompletionsService;
  hub: StreamHub;
  /** The open-stream slots of README "Limits", shared with `/api/stream`. */
  leases: OpenStreamLeases;
  leaseRenewMs: number;
  heartbeatMs: number;
  /** Stamps `created`; runs the lease renewal and the heartbeat. */
  clock: Clock;
}

/**
 * `POST /v1/chat/completions` and `GET /v1/chat/completions/{id}`. Every call is a Sluice
 * generation in a worker (chat-completions-service.ts); the answer, streamed or not, is read
 * from its log through the hub (PROTOCOL.md section 10), so a client that goes away stops only
 * its own reading, never the generation.
 */
export function registerChatCompletionRoutes(v1: App, dependencies: ChatCompletionRouteDependencies): void {
  const { completions, hub, clock } = dependencies;

  const holdLease = (userId: string): Promise<() => void> => holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock);

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
      if (isActiveStatus(stored.status)) throw new SluiceError("GENERATION_IN_PROGRESS", "This chat completion is still being generated; retry when it has finished.");
      const identity: CompletionIdentity = { id: request.params.id, created: Math.floor(stored.createdAt.getTime() / 1000), model: stored.model ?? "" };
      if (stored.status === "failed") {
        const failure = generationFailure({ type: "end", status: "failed", error: { code: stored.errorCode ?? "INTERNAL", message: "The generation failed." } });
        return reply.status(failure.status).send(failure.body);
      }
      const usage = stored.inputTokens === null || stored.outputTokens === null ? null : toUsage(stored.inputTokens, stored.outputTokens);
      return chatCompletion(identity, { text: stored.content, reasoning: stored.reasoning, usage, finishReason: "stop" });
    },
  );

  /** Reads the whole log, then answers once; the client leaving stops only the reading. */
  const collectCompletion = async (reply: FastifyReply, taskId: string, identity: CompletionIdentity): Promise<unknown> => {
    const collected = await collectGeneration(reply, hub, taskId);
    if (!collected) return reply.hijack();
    const { text, reasoning, usage, end } = collected;
    if (end.status === "failed") {
      const failure = generationFailure(end);
      return reply.status(failure.status).send(failure.body);
    }
    return chatCompletion(identity, { text, reasoning, usage, finishReason: "stop" });
  };

  /** Server-sent `chat.completion.chunk`s as the log grows, then `[DONE]`. */
  const streamCompletion = async (reply: FastifyReply, taskId: string, identity: CompletionIdentity, includeUsage: boolean, release: () => void): Promise<void> => {
    const chunks = createChunkStream(identity, { includeUsage });
    await serveMappedStream({
      reply,
      hub,
      taskId,
      heartbeatMs: dependencies.heartbeatMs,
      clock,
      map: (entries) => chunks.push(entries),
      isFinished: () => chunks.finished,
      closedByServerFrame: `data: ${JSON.stringify(openAiErrorBody(503, "The server stopped streaming this generation; retry.", "SERVICE_UNAVAILABLE"))}\n\n`,
      onClose: release,
    });
  };
}
