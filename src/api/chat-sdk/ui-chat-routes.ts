import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { GenerationsService } from "../../chat/generations-service.ts";
import type { UiChatGeneration, UiChatsService } from "../../chat/ui-chats-service.ts";
import type { OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import type { StreamHub } from "../../streaming/index.ts";
import { systemClock, type Clock } from "../../time/clock.ts";
import type { App } from "../app-type.ts";
import { currentUser, type RequireUser } from "../auth/authenticate.ts";
import { holdOpenStreamLease, serveMappedStream } from "../openai/serve-mapped-stream.ts";
import { idempotencyHeaders, standardErrors } from "../schemas.ts";
import { chatId, newUserMessage, uiChatBody } from "./ui-chat-request.ts";
import { createUiMessageChunkMapper, encodeUiMessageChunks, uiMessageStreamHeader } from "./ui-message-chunks.ts";

export interface UiChatRouteDependencies {
  chats: UiChatsService;
  generations: GenerationsService;
  requireUser: RequireUser;
  hub: StreamHub;
  leases: OpenStreamLeases;
  leaseRenewMs: number;
  heartbeatMs: number;
  /** Runs the lease renewal and the heartbeat (default: the system clock). */
  clock?: Clock;
}

const chatParams = z.object({ id: chatId });
const uiMessageView = z.object({
  id: z.string(),
  role: z.enum(["user", "assistant"]),
  // Ordered as the stream sends them: the reasoning (AI SDK ReasoningUIPart), then the text.
  parts: z.array(z.union([z.object({ type: z.literal("reasoning"), text: z.string(), state: z.literal("done") }), z.object({ type: z.literal("text"), text: z.string() })])),
  metadata: z.object({ status: z.string() }),
});

/**
 * The AI SDK's `useChat` against Sluice (README "Use Sluice from useChat", PROTOCOL.md 12):
 * `POST /api/chat` (DefaultChatTransport's default URL) starts an ordinary generation and
 * answers its UI message stream; `GET /api/chat/:id/stream` (its `resume: true` reconnect URL)
 * answers the chat's active generation from its first chunk, or 204; `GET /api/chat/:id/messages`
 * is the saved history as UI messages, for a page that reloads. Session bearer token, as `/api`.
 */
export function registerUiChatRoutes(app: App, dependencies: UiChatRouteDependencies): void {
  const { chats, hub, requireUser } = dependencies;
  const clock = dependencies.clock ?? systemClock;
  const tags = ["ai-sdk"];
  const closedByServer = encodeUiMessageChunks([{ type: "error", errorText: "SERVICE_UNAVAILABLE: The server stopped streaming this reply; resume the stream." }], false);

  /** Serves the generation and releases the user's open-stream slot when the response is over. */
  const streamGeneration = async (reply: FastifyReply, userId: string, generation: UiChatGeneration, release: () => void): Promise<FastifyReply> => {
    try {
      const mapper = createUiMessageChunkMapper(generation);
      reply.raw.setHeader(uiMessageStreamHeader.name, uiMessageStreamHeader.value);
      await serveMappedStream({
        reply,
        hub,
        taskId: generation.taskId,
        whenMissing: () => dependencies.generations.whenStreamMissing(userId, generation.taskId),
        heartbeatMs: dependencies.heartbeatMs,
        clock,
        map: (entries) => {
          const chunks = mapper.push(entries);
          return encodeUiMessageChunks(chunks, mapper.finished);
        },
        isFinished: () => mapper.finished,
        closedByServerFrame: closedByServer,
        onClose: release,
      });
      return reply;
    } finally {
      release();
    }
  };

  app.post(
    "/api/chat",
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "useChat's send: a new user message (or regenerate-message) starts a generation, answered as the AI SDK's UI message stream",
        headers: idempotencyHeaders,
        body: uiChatBody,
        response: { ...standardErrors },
      },
    },
    async (request, reply) => {
      const userId = currentUser(request).id;
      const { body } = request;
      const content = body.trigger === "submit-message" ? newUserMessage(body) : undefined;
      // A retry with the same key gets the same generation's stream from its first chunk (README "Idempotency policy").
      const idempotencyKey = request.headers["idempotency-key"];
      // The slot first, so a user over LIMIT_OPEN_STREAMS_PER_USER starts nothing.
      const release = await holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock);
      let generation: UiChatGeneration;
      try {
        generation =
          content === undefined
            ? await chats.regenerate(userId, body.id, { model: body.model }, idempotencyKey)
            : await chats.submit(userId, body.id, { content, model: body.model }, idempotencyKey);
      } catch (error) {
        release();
        throw error;
      }
      return streamGeneration(reply, userId, generation, release);
    },
  );

  app.get(
    "/api/chat/:id/stream",
    {
      onRequest: requireUser,
      schema: { tags, summary: "useChat's resume: the active generation's UI message stream from its start, or 204 when there is none", params: chatParams, response: { 204: z.null(), ...standardErrors } },
    },
    async (request, reply) => {
      const userId = currentUser(request).id;
      const generation = await chats.activeGeneration(userId, request.params.id);
      if (!generation) return reply.status(204).send(null);
      return streamGeneration(reply, userId, generation, await holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock));
    },
  );

  app.get(
    "/api/chat/:id/messages",
    {
      onRequest: requireUser,
      schema: { tags, summary: "The chat's saved messages as AI SDK UI messages (the active reply comes from the stream); [] for an unknown chat", params: chatParams, response: { 200: z.array(uiMessageView), ...standardErrors } },
    },
    async (request) =>
      (await chats.history(currentUser(request).id, request.params.id)).map((message) => ({
        id: message.id,
        role: message.role,
        parts: [
          ...(message.reasoning === "" ? [] : [{ type: "reasoning" as const, text: message.reasoning, state: "done" as const }]),
          ...(message.content === "" ? [] : [{ type: "text" as const, text: message.content }]),
        ],
        metadata: { status: message.status },
      })),
  );
}
