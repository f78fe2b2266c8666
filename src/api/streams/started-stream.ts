import type { FastifyReply, FastifyRequest } from "fastify";
import type { GenerationAccepted, GenerationsService } from "../../chat/generations-service.ts";
import type { OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import { serveSse, type StreamHub } from "../../streaming/index.ts";
import type { Clock } from "../../time/clock.ts";
import { holdOpenStreamLease } from "../openai/serve-mapped-stream.ts";

/** What serves Sluice's SSE streams, here and in `GET /api/stream/:taskId`. */
export interface StartedStreamDependencies {
  hub: StreamHub;
  generations: GenerationsService;
  leases: OpenStreamLeases;
  /** Lease renewal period; a lease lives three periods, so a crashed process's streams stop counting soon. */
  leaseRenewMs: number;
  heartbeatMs: number;
  retryMs: number;
  retryJitterMs: number;
  /** Its wall clock checks read tokens' expiry; lease renewal and the SSE timers run on it. */
  clock: Clock;
}

/** The route's answer to a request that started a generation (PROTOCOL.md 2.4). */
export type AnswerStarted = (request: FastifyRequest, reply: FastifyReply, userId: string, start: () => Promise<GenerationAccepted>) => Promise<FastifyReply>;

/** True when the client asked for the stream itself (`Accept: text/event-stream`), not the 202. */
export function wantsEventStream(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  if (accept === undefined) return false;
  return accept.split(",").some((range) => range.split(";", 1)[0]?.trim().toLowerCase() === "text/event-stream");
}

/** The `accepted` frame: the 202's body, once, before the log's events; it has no id, as it is not in the log. */
export function encodeAcceptedFrame(accepted: GenerationAccepted): string {
  return `event: accepted\ndata: ${JSON.stringify({ type: "accepted", ...accepted })}\n\n`;
}

/**
 * The routes that start a generation answer 202 with its `streamUrl`, or, when the client
 * accepts `text/event-stream`, the stream itself in the same response: no second request, and
 * no token waits for one. The stream is the one `GET streamUrl` serves, from its first entry,
 * after an `accepted` event that carries the 202's body (resume with `GET streamUrl` and the
 * last id). The open-stream slot is taken first, so a user over the limit starts nothing. Once
 * the generation is accepted the answer is never an error: if the stream cannot be served at
 * once (Redis gone in between), the answer is the ordinary 202.
 */
export function createAnswerStarted(dependencies: StartedStreamDependencies): AnswerStarted {
  const { clock } = dependencies;
  return async (request, reply, userId, start) => {
    if (!wantsEventStream(request)) return reply.status(202).send(await start());
    const release = await holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock);
    let accepted: GenerationAccepted;
    try {
      accepted = await start();
    } catch (error) {
      release();
      throw error;
    }
    reply.hijack();
    await serveSse({
      request: request.raw,
      response: reply.raw,
      hub: dependencies.hub,
      taskId: accepted.taskId,
      after: "first-entry",
      firstFrame: encodeAcceptedFrame(accepted),
      // As for a read token: the job was just added, so a missing log is one that has not begun.
      whenMissing: () => dependencies.generations.whenStreamMissing(userId, accepted.taskId),
      answerRefusal: (response) => {
        if (response.headersSent || response.destroyed) return;
        response.writeHead(202, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" }).end(JSON.stringify(accepted));
      },
      heartbeatMs: dependencies.heartbeatMs,
      retryMs: dependencies.retryMs,
      retryJitterMs: dependencies.retryJitterMs,
      clock,
      onClose: release,
    });
    return reply;
  };
}
