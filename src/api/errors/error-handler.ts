import type { FastifyError } from "fastify";
import type { App } from "../app-type.ts";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { SluiceError, toErrorBody, type ErrorCode } from "../../errors/catalog.ts";
import { isUnavailableError } from "../../errors/dependency-failure.ts";
import { isDatabaseUnavailable } from "../../storage/database-errors.ts";

// Fastify's own error codes mapped onto the catalog, so clients see one vocabulary.
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_JSON_BODY: "INVALID_JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "INVALID_JSON",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_BAD_URL: "VALIDATION_FAILED",
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
  const mapped = fastifyError.code === undefined ? undefined : fastifyCodes[fastifyError.code];
  if (mapped) return new SluiceError(mapped);
  // Parser errors raised by body parsers (e.g. a JSON prototype-poisoning attempt) carry a 4xx statusCode.
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    if (status === 413) return new SluiceError("BODY_TOO_LARGE");
    if (status === 415) return new SluiceError("UNSUPPORTED_MEDIA_TYPE");
    return new SluiceError("VALIDATION_FAILED", "The request is not valid.");
  }
  if (isUnavailableError(error) || isDatabaseUnavailable(error)) return new SluiceError("SERVICE_UNAVAILABLE", undefined, { cause: error, details: { retryAfterSeconds: 2 } });
  return new SluiceError("INTERNAL", undefined, { cause: error });
}

export function registerErrorHandling(app: App): void {
  app.setErrorHandler((error, request, reply) => {
    const sluiceError = toSluiceError(error);
    if (sluiceError.status >= 500) request.log.error({ err: error, code: sluiceError.code }, "request failed");
    const retryAfter = sluiceError.details?.retryAfterSeconds;
    if (typeof retryAfter === "number") void reply.header("retry-after", String(retryAfter));
    return reply.status(sluiceError.status).send(toErrorBody(sluiceError));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new SluiceError("ROUTE_NOT_FOUND", `No route ${request.method} ${request.url.split("?")[0] ?? ""}`);
    return reply.status(error.status).send(toErrorBody(error));
  });
}
