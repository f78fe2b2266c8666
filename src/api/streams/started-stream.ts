import type { FastifyReply, FastifyRequest } from "fastify";
import type { GenerationAccepted, GenerationsService } from "../../chat/generations-service.ts";
import type { OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import { serveSse, writeErrorResponse, type StreamHub } from "../../streaming/index.ts";
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

/** True when the client asked for the stream itself (`Accept: text/event-stream`, not with `q=0`), not the 202. */
export function wantsEventStream(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  if (accept === undefined) return false;
  return accept.split(",").some((range) => {
    const [type, ...parameters] = range.split(";");
    if (type?.trim().toLowerCase() !== "text/event-stream") return false;
    const quality = parameters.find((parameter) => parameter.trim().toLowerCase().startsWith("q="));
    return quality === undefined || Number(quality.trim().slice(2)) > 0;
  });
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
 * last id). The POST does what it does without the header; the stream is extra. So refusals are
 * the route's own and start nothing, and a generation this request accepted is never answered
 * with an error: if its stream cannot be served at once (no open-stream slot free, Redis gone in
 * between, this server shutting down), the answer is the ordinary 202. A stream that is gone (an
 * Idempotency-Key replay after the log expired: 410; the conversation deleted meanwhile: 404) is
 * answered as `GET streamUrl` would answer it.
 */
export function createAnswerStarted(dependencies: StartedStreamDependencies): AnswerStarted {
  const { clock } = dependencies;
  return async (request, reply, userId, start) => {
    if (!wantsEventStream(request)) return reply.status(202).send(await start());
    // Side by side: without an Idempotency-Key the start's first call is the message rate limit,
    // sent in the same tick as the lease, so auto-pipelining gives them one round trip, not two in
    // a row (with a key, the key's lookup in PostgreSQL comes first and overlaps the lease instead).
    const [lease, started] = await Promise.allSettled([holdOpenStreamLease(dependencies.leases, userId, dependencies.leaseRenewMs, clock), start()]);
    if (started.status === "rejected") {
      if (lease.status === "fulfilled") lease.value();
      throw started.reason;
    }
    const accepted = started.value;
    if (lease.status === "rejected") return reply.status(202).send(accepted);
    const release = lease.value;
    reply.hijack();
    await serveSse({
      request: request.raw,
      response: reply.raw,
      hub: dependencies.hub,
      taskId: accepted.taskId,
      after: "first-entry",
      firstFrame: encodeAcceptedFrame(accepted),
      // As for a read token. An Idempotency-Key replay may come after the log expired, so a missing
      // log is looked up rather than assumed to be a job that has not begun.
      whenMissing: () => dependencies.generations.whenStreamMissing(userId, accepted.taskId),
      answerRefusal: (response, error) => {
        if (error.status !== 503) return writeErrorResponse(response, error);
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
