import type { FastifyReply } from "fastify";
import { z } from "zod";
import { SluiceError } from "../../errors/catalog.ts";
import type { StoredCompletion } from "../../storage/stored-completions-repository.ts";
import type { App } from "../app-type.ts";
import { text } from "../schemas.ts";
import { apiKeyUser } from "./api-key-user.ts";
import { generationFailure } from "./chat-completion-format.ts";
import type { ChatCompletionRouteDependencies } from "./chat-completion-routes.ts";
import { openAiErrorBody } from "./openai-errors.ts";
import { createResponseEventMapper, encodeResponseEvent, responseIdOf, responseObject, responseUsage, taskIdOfResponse, type ResponseIdentity, type ResponseStatus } from "./response-events.ts";
import { responseBody, toResponseRequest } from "./response-request.ts";
import { collectGeneration, holdOpenStreamLease, serveMappedStream } from "./serve-mapped-stream.ts";

const retrieveQuery = z.object({
  stream: z.enum(["true", "false"]).optional(),
  starting_after: z.coerce.number().int().min(-1).max(Number.MAX_SAFE_INTEGER).optional(),
  include_obfuscation: z.enum(["true", "false"]).optional(),
});

const statusOf: Readonly<Record<StoredCompletion["status"], ResponseStatus>> = {
  pending: "queued",
  streaming: "in_progress",
  completed: "completed",
  cancelled: "cancelled",
  failed: "failed",
};

/**
 * The Responses API (PROTOCOL.md section 11): `POST /v1/responses` (background or not, streamed
 * or not), `GET /v1/responses/{id}` (stored object, or `?stream=true&starting_after=N` to resume
 * the events), `POST /v1/responses/{id}/cancel`. Every call is a Sluice generation, as for
 * Chat Completions.
 */
export function registerResponseRoutes(v1: App, dependencies: ChatCompletionRouteDependencies): void {
  const { completions, hub, clock } = dependencies;
  const closedError = openAiErrorBody(503, "The server stopped streaming this response; resume with starting_after.", "SERVICE_UNAVAILABLE").error;
  const closedByServerFrame = encodeResponseEvent({ type: "error", sequence_number: -1, code: closedError.code, message: closedError.message, param: null });

  const stored = (taskId: string, found: StoredCompletion): ResponseIdentity => ({
    id: responseIdOf(taskId),
    createdAt: Math.floor(found.createdAt.getTime() / 1000),
    model: found.model ?? "",
    background: null,
    store: true,
  });

  /** The events of the log after `startingAfter`, live until the response's last event. */
  const streamEvents = async (reply: FastifyReply, taskId: string, identity: ResponseIdentity, startingAfter: number, userId: string, release: () => void): Promise<void> => {
    const mapper = createResponseEventMapper(identity);
    await serveMappedStream({
      reply,
      hub,
      taskId,
      whenMissing: () => completions.whenStreamMissing(userId, taskId),
      heartbeatMs: dependencies.heartbeatMs,
      clock,
      map: (entries) => mapper.push(entries).filter((event) => event.sequence_number > startingAfter).map(encodeResponseEvent).join(""),
      isFinished: () => mapper.finished,
      closedByServerFrame,
      onClose: release,
    });
  };

  v1.post(
    "/responses",
    { schema: { tags: ["openai"], summary: "OpenAI Responses: background and/or streamed; every call is a durable Sluice generation", body: responseBody } },
    async (request, reply) => {
      const userId = apiKeyUser(request).id;
      const completionRequest = toResponseRequest(request.body);
      const background = request.body.background === true;
      const streamed = request.body.stream === true;
      // A background call that is not streamed answers at once and reads nothing: no open-stream slot.
      const release = background && !streamed ? () => undefined : await holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock);
      try {
        const started = await completions.start(userId, completionRequest);
        const identity: ResponseIdentity = {
          id: responseIdOf(started.taskId),
          createdAt: Math.floor((started.createdAt?.getTime() ?? dependencies.clock.wallClockMs()) / 1000),
          model: request.body.model,
          background,
          store: completionRequest.store,
        };
        if (streamed) {
          await streamEvents(reply, started.taskId, identity, -1, userId, release);
          return reply;
        }
        if (background) return responseObject(identity, { status: "queued", text: undefined, usage: null, error: null });
        return await collectResponse(reply, started.taskId, identity);
      } finally {
        release();
      }
    },
  );

  const collectResponse = async (reply: FastifyReply, taskId: string, identity: ResponseIdentity): Promise<unknown> => {
    const collected = await collectGeneration(reply, hub, taskId);
    if (!collected) return reply.hijack();
    const { text: replyText, usage, end } = collected;
    if (end.status === "failed") {
      const failure = generationFailure(end).body.error;
      return responseObject(identity, { status: "failed", text: undefined, usage: null, error: { code: failure.code ?? "internal", message: failure.message } });
    }
    const responseUsageOf = usage && responseUsage(usage.prompt_tokens, usage.completion_tokens);
    return responseObject(identity, { status: end.status === "cancelled" ? "cancelled" : "completed", text: replyText, usage: responseUsageOf, error: null });
  };

  const idParams = z.object({ id: text().max(100) });
  const findStored = async (userId: string, id: string): Promise<{ taskId: string; found: StoredCompletion }> => {
    const taskId = taskIdOfResponse(id);
    if (!taskId) throw new SluiceError("NOT_FOUND", "No such response.");
    const found = await completions.find(userId, taskId).catch((error: unknown) => {
      throw error instanceof SluiceError && error.code === "NOT_FOUND" ? new SluiceError("NOT_FOUND", "No such response.") : error;
    });
    return { taskId, found };
  };
  const present = (taskId: string, found: StoredCompletion): Record<string, unknown> => {
    const status = statusOf[found.status];
    const final = status === "completed" || status === "cancelled";
    const usage = found.inputTokens === null || found.outputTokens === null ? null : responseUsage(found.inputTokens, found.outputTokens);
    const error = status === "failed" ? { code: (found.errorCode ?? "INTERNAL").toLowerCase(), message: "The generation failed." } : null;
    return responseObject(stored(taskId, found), { status, text: final ? found.content : undefined, usage, error });
  };

  v1.get(
    "/responses/:id",
    { schema: { tags: ["openai"], summary: "A stored response; with ?stream=true its events again, after starting_after", params: idParams, querystring: retrieveQuery } },
    async (request, reply) => {
      const userId = apiKeyUser(request).id;
      const { taskId, found } = await findStored(userId, request.params.id);
      if (request.query.stream !== "true") return present(taskId, found);
      const release = await holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock);
      try {
        await streamEvents(reply, taskId, stored(taskId, found), request.query.starting_after ?? -1, userId, release);
        return reply;
      } finally {
        release();
      }
    },
  );

  v1.post(
    "/responses/:id/cancel",
    { schema: { tags: ["openai"], summary: "Cancel a response; its stream ends with response.incomplete (status cancelled)", params: idParams } },
    async (request) => {
      const userId = apiKeyUser(request).id;
      const { taskId } = await findStored(userId, request.params.id);
      await completions.cancel(userId, taskId);
      const { found } = await findStored(userId, request.params.id);
      return present(taskId, found);
    },
  );
}
