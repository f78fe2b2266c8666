import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { StreamTokenSigner } from "../../auth/stream-read-tokens.ts";
import { SluiceError } from "../../errors/catalog.ts";
import { callRedis } from "../../errors/dependency-failure.ts";
import type { AuthenticatedUser } from "../../storage/sessions-repository.ts";
import { isActiveStatus } from "../../storage/messages-repository.ts";
import { serveSse, type WhenLogMissingOption } from "../../streaming/index.ts";
import { repeatEvery } from "../../time/clock.ts";
import type { App } from "../app-type.ts";
import { bearerToken, currentUser, type RequireUser } from "../auth/authenticate.ts";
import type { StartedStreamDependencies } from "./started-stream.ts";
import { isTaskId, standardErrors, taskParams, text } from "../schemas.ts";

export interface StreamRouteDependencies extends StartedStreamDependencies {
  authenticate: (token: string) => Promise<AuthenticatedUser | undefined>;
  requireUser: RequireUser;
  streamTokens: StreamTokenSigner;
}

const streamQuery = z.object({
  token: text().max(300).optional(),
  lastEventId: text().max(200).optional(),
});

/** PROTOCOL.md: `GET /api/stream/:taskId` (SSE) and `POST /api/stream/:taskId/cancel`. */
export function registerStreamRoutes(app: App, dependencies: StreamRouteDependencies): void {
  const { hub, generations } = dependencies;

  /**
   * Who reads, and what to do if the log is missing. A read token (for EventSource,
   * which cannot send headers) was signed for this task and its owner, so it needs no
   * lookup: PostgreSQL is asked only when the log is missing (queued, expired or
   * deleted). A Bearer token proves only the user, so ownership is checked first.
   */
  const streamReader = async (request: FastifyRequest, taskId: string, readToken: string | undefined): Promise<{ userId: string; whenMissing: WhenLogMissingOption }> => {
    if (readToken !== undefined) {
      const userId = dependencies.streamTokens.verify(readToken, taskId, dependencies.clock.wallClockMs());
      if (userId) return { userId, whenMissing: () => generations.whenStreamMissing(userId, taskId) };
      throw new SluiceError("UNAUTHENTICATED", "The stream token is invalid or expired; fetch a new streamUrl.");
    }
    const token = bearerToken(request);
    const user = token === undefined ? undefined : await dependencies.authenticate(token);
    if (!user) throw new SluiceError("UNAUTHENTICATED");
    // A malformed id is not found, like another user's, before any query (schemas.ts).
    if (!isTaskId(taskId)) throw new SluiceError("STREAM_NOT_FOUND");
    const task = await generations.streamAccess(user.id, taskId);
    return { userId: user.id, whenMissing: isActiveStatus(task.status) ? "wait" : "STREAM_EXPIRED" };
  };

  app.get(
    "/api/stream/:taskId",
    {
      schema: {
        tags: ["streams"],
        summary: "Server-sent events of one generation, resumable by Last-Event-ID (see PROTOCOL.md)",
        params: taskParams,
        querystring: streamQuery,
        response: { 200: z.string().describe("text/event-stream"), 204: z.null(), 410: standardErrors[404], ...standardErrors },
      },
    },
    async (request, reply) => {
      const { taskId } = request.params;
      const { userId, whenMissing } = await streamReader(request, taskId, request.query.token);
      // The open-streams lease is taken beside the hub's open (serveSse's admission), released on close.
      let stopRenewal: (() => void) | undefined;
      let closed = false;
      const lease = callRedis(() => dependencies.leases.acquire(userId)).then((acquired) => {
        if (!closed) stopRenewal = repeatEvery(dependencies.clock, dependencies.leaseRenewMs, () => void acquired.renew().catch(() => undefined));
        return acquired;
      });
      // Judged by serveSse; this only keeps an early refusal (a bad cursor answered first) from being unhandled.
      lease.catch(() => undefined);
      reply.hijack();
      await serveSse({
        request: request.raw,
        response: reply.raw,
        hub,
        taskId,
        whenMissing,
        admission: lease,
        heartbeatMs: dependencies.heartbeatMs,
        retryMs: dependencies.retryMs,
        retryJitterMs: dependencies.retryJitterMs,
        clock: dependencies.clock,
        onClose: () => {
          closed = true;
          stopRenewal?.();
          void lease.then((acquired) => acquired.release()).catch(() => undefined);
        },
      });
    },
  );

  app.post(
    "/api/stream/:taskId/cancel",
    {
      onRequest: dependencies.requireUser,
      schema: {
        tags: ["streams"],
        summary: "Cancel a generation from any API process; the stream ends with end/cancelled",
        params: taskParams,
        response: { 202: z.object({ taskId: z.string(), status: z.literal("cancelling") }), ...standardErrors },
      },
    },
    async (request, reply) => {
      if (!isTaskId(request.params.taskId)) throw new SluiceError("STREAM_NOT_FOUND");
      await generations.cancel(currentUser(request).id, request.params.taskId);
      return reply.status(202).send({ taskId: request.params.taskId, status: "cancelling" as const });
    },
  );
}
