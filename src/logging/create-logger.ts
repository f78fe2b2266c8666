import { pino, type Logger } from "pino";
import { redactDatabaseError } from "./redact-database-error.ts";

/**
 * Structured JSON logs. Secrets are redacted by path, and user text is only ever
 * logged as a JSON field value, so it cannot forge a log line.
 */
export function createLogger(options: { level: string; name?: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      name: options.name ?? "sluice",
      base: { pid: process.pid },
      redact: {
        paths: [
          "req.headers.authorization",
          "req.headers.cookie",
          "req.query.token",
          "headers.authorization",
          "password",
          "*.password",
          "token",
          "*.token",
          "apiKey",
          "*.apiKey",
          "secret",
          "*.secret",
        ],
        censor: "[redacted]",
      },
      // `req` replaces Fastify's request serializer, which logs the raw URL: a `?token=` there (stream read tokens) is a credential.
      // `err`/`error`: a failed SQL statement is logged by its SQLSTATE, never with its parameters (redact-database-error.ts).
      serializers: { err: serializeError, error: serializeError, req: serializeRequest },
    },
    options.destination,
  );
}

function serializeError(error: unknown): unknown {
  return pino.stdSerializers.err(redactDatabaseError(error) as Error);
}

/** Fastify's request fields, with credentials in the query string masked. */
function serializeRequest(request: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url?.replace(/([?&](?:token|access_token)=)[^&#]*/gi, "$1[redacted]"),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export type { Logger };
