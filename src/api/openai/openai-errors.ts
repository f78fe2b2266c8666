import type { FastifyReply } from "fastify";
import { SluiceError } from "../../errors/catalog.ts";
import type { App } from "../app-type.ts";
import { toSluiceError } from "../errors/error-handler.ts";

/** OpenAI's error body: the `openai` SDK reads `error.message`, `type`, `param`, `code`, and picks its error class by status. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

// OpenAI's own codes where Sluice has the same condition, so code written against OpenAI keeps working;
// every other Sluice code is passed through (lower-cased) from the catalog.
const openAiCodes: Readonly<Record<string, string>> = {
  UNAUTHENTICATED: "invalid_api_key",
  MODEL_NOT_ALLOWED: "model_not_found",
  RATE_LIMITED: "rate_limit_exceeded",
  TOO_MANY_GENERATIONS: "rate_limit_exceeded",
  TOO_MANY_OPEN_STREAMS: "rate_limit_exceeded",
  ROUTE_NOT_FOUND: "unknown_url",
};

function typeOf(status: number): string {
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** The error shape of every `/v1` answer; `code` is a Sluice catalog code or OpenAI's equivalent. */
export function openAiErrorBody(status: number, message: string, code: string, param: string | null = null): OpenAiErrorBody {
  return { error: { message, type: typeOf(status), param, code: openAiCodes[code] ?? code.toLowerCase() } };
}

/** The request part a validation failure names, as OpenAI's `param` (`messages.0.content`). */
function paramOf(error: SluiceError): string | null {
  if (error.code === "MODEL_NOT_ALLOWED") return "model";
  const issues = error.details?.issues;
  if (!Array.isArray(issues)) return null;
  const path = (issues[0] as { path?: unknown } | undefined)?.path;
  if (typeof path !== "string" || path === "") return null;
  return path.replace(/^body\/?/, "").replaceAll("/", ".") || null;
}

export function sendOpenAiError(reply: FastifyReply, error: SluiceError): FastifyReply {
  const retryAfter = error.details?.retryAfterSeconds;
  if (typeof retryAfter === "number") void reply.header("retry-after", String(retryAfter));
  return reply.status(error.status).send(openAiErrorBody(error.status, error.message, error.code, paramOf(error)));
}

/**
 * `/v1/*` answers errors in OpenAI's shape, not Sluice's (the SDK maps 400, 401, 404, 429 and
 * 5xx to BadRequestError, AuthenticationError, NotFoundError, RateLimitError, InternalServerError).
 * Set on the encapsulated `/v1` plugin, so the rest of the API keeps its own handler; the
 * classification of an error is the shared one (api/errors).
 */
export function registerOpenAiErrorHandling(v1: App): void {
  v1.setErrorHandler((error, request, reply) => {
    const sluiceError = toSluiceError(error);
    if (sluiceError.status >= 500) request.log.error({ err: error, code: sluiceError.code }, "request failed");
    return sendOpenAiError(reply, sluiceError);
  });
  v1.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    return sendOpenAiError(reply, new SluiceError("ROUTE_NOT_FOUND", `Unknown request URL: ${request.method} ${path}.`));
  });
}
