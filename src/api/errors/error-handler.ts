import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { App } from "../app-type.ts";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { SluiceError, errorHeaders, toErrorBody, type ErrorCode } from "../../errors/catalog.ts";
import { isUnavailableError } from "../../errors/dependency-failure.ts";
import { isDataException, isDatabaseUnavailable, sqlStateOf } from "../../storage/database-errors.ts";
import { createAllowedMethods } from "./allowed-methods.ts";
import { drainUnreadBody } from "./drain-unread-body.ts";

// Fastify's own error codes mapped onto the catalog, so clients see one vocabulary.
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_JSON_BODY: "INVALID_JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "INVALID_JSON",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_MAX_PARAM_LENGTH: "URL_TOO_LONG",
  FST_ERR_VALIDATION: "VALIDATION_FAILED",
  FST_ERR_NOT_FOUND: "ROUTE_NOT_FOUND",
};

/** Turns any thrown error into the one error shape; unknown errors become a logged 500 with no stack or message leaked. */
export function toSluiceError(error: unknown): SluiceError {
  if (error instanceof SluiceError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((issue) => ({
      path: [error.validationContext, issue.instancePath].filter(Boolean).join(""),
      message: issue.message,
    }));
    const summary = issues.map((issue) => `${issue.path || "(body)"}: ${issue.message}`).join("; ");
    return new SluiceError("VALIDATION_FAILED", `The request is not valid: ${summary}`.slice(0, 500), { details: { issues } });
  }
  const fastifyError = error as Partial<FastifyError> & { type?: string };
  if (fastifyError.code === "FST_ERR_BAD_URL") return new SluiceError("VALIDATION_FAILED", "The URL is not valid: it has a broken %-encoding.");
  const mapped = fastifyError.code === undefined ? undefined : fastifyCodes[fastifyError.code];
  if (mapped) return new SluiceError(mapped);
  // Parser errors raised by body parsers (e.g. a JSON prototype-poisoning attempt) carry a 4xx statusCode.
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    if (status === 413) return new SluiceError("BODY_TOO_LARGE");
    if (status === 415) return new SluiceError("UNSUPPORTED_MEDIA_TYPE");
    return new SluiceError("VALIDATION_FAILED");
  }
  // PostgreSQL refused a value the schemas let through: the request's fault, never a 500 (issue 12).
  if (isDataException(error)) return new SluiceError("VALIDATION_FAILED", "The request holds a value that cannot be stored or compared.");
  if (isUnavailableError(error) || isDatabaseUnavailable(error)) return new SluiceError("SERVICE_UNAVAILABLE", undefined, { cause: error, details: { retryAfterSeconds: 2 } });
  return new SluiceError("INTERNAL", undefined, { cause: error });
}

/** Sends `error` in the one error shape, with Retry-After when it says when to come back. */
function sendError(reply: FastifyReply, sluiceError: SluiceError): FastifyReply {
  return reply.status(sluiceError.status).headers(errorHeaders(sluiceError)).send(toErrorBody(sluiceError));
}

/**
 * Fastify's `frameworkErrors` option: errors its router raises before any route
 * or hook runs (a broken %-encoding, a path parameter over maxParamLength) get
 * the one error shape instead of Fastify's own.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, toSluiceError(error));
}

export interface ErrorHandlingOptions {
  /** How long a body that arrives after its request was answered is drained before the socket is cut (drain-unread-body.ts). */
  drainUnreadBodyMs: number;
}

export function registerErrorHandling(app: App, options: ErrorHandlingOptions = { drainUnreadBodyMs: 30_000 }): void {
  app.setErrorHandler((error, request, reply) => {
    const sluiceError = toSluiceError(error);
    if (sluiceError.status >= 500) request.log.error({ err: error, code: sluiceError.code }, "request failed");
    else if (isDataException(error)) request.log.warn({ sqlState: sqlStateOf(error), code: sluiceError.code }, "PostgreSQL refused a value of the request");
    return sendError(reply, sluiceError);
  });
  // Every route the app serves, so an unmatched method on a known path is 405, not 404.
  const allowedMethods = createAllowedMethods();
  app.addHook("onRoute", (route) => allowedMethods.add(route.method, route.url));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const allowed = allowedMethods.of(path);
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      void reply.header("allow", allowed.join(", "));
      return sendError(reply, new SluiceError("METHOD_NOT_ALLOWED", `${request.method} is not served on ${path}; use ${allowed.join(", ")}.`));
    }
    return sendError(reply, new SluiceError("ROUTE_NOT_FOUND", `No route ${request.method} ${path}`));
  });
  // Fastify's own 503 while closing (return503OnClosing) is not in the error shape; build-app turns it
  // off and this answers instead: a request on a connection still open at shutdown is told to retry.
  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.addHook("onRequest", async (_request, reply) => {
    if (!closing) return;
    void reply.header("connection", "close");
    throw new SluiceError("SERVICE_UNAVAILABLE", "The server is shutting down; retry.", { details: { retryAfterSeconds: 1 } });
  });
  // An answer sent before its request's body arrived in full must not close the socket under the client.
  app.addHook("onSend", async (request, reply, payload) => {
    if (drainUnreadBody(request.raw, options.drainUnreadBodyMs)) reply.removeHeader("connection");
    return payload;
  });
}
