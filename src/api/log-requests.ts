import { LogController, type FastifyReply, type FastifyRequest } from "fastify";

/**
 * One log line per request, when it completes (SSE streams included), instead of
 * Fastify's two ("incoming request" + "request completed"): at a few hundred
 * generations a second the extra line and its serializers were a tenth of the
 * API's CPU (BENCHMARKS.md, start path). The path is logged without its query
 * string, which may carry a stream read token. Fastify's error logs are unchanged.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  // The request line already says 404; Fastify's own line would repeat the URL with its query.
  override routeNotFound(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const url = request.raw.url ?? "";
    const queryAt = url.indexOf("?");
    const line = {
      method: request.raw.method,
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      statusCode: reply.raw.statusCode,
      responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
    };
    if (error) reply.log.error({ ...line, err: error }, "request errored");
    else reply.log.info(line, "request");
  }
}

export function createRequestLogController(): LogController {
  return new OneLinePerRequest();
}
