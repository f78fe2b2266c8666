import { pino, type Logger } from "pino";
import { redactDatabaseError } from "./redact-database-error.ts";

/**
 * The size up to which one write(2) to a pipe is atomic on Linux (PIPE_BUF). The API
 * thread and the worker thread of `sluice start` share stdout; writes of whole lines no
 * larger than this never interleave mid-line.
 */
const atomicPipeWriteBytes = 4096;

/**
 * Standard output, written off the event loop: pino's synchronous default makes every
 * line a write(2) on the loop, which on the start path was about 0.3 ms of the API's CPU
 * per request and sat in the worker between a reply's first token and its append
 * (BENCHMARKS.md, start path). Asynchronous, lines written while a write is in flight
 * go out together in the next one. pino flushes it when the process exits.
 */
export function standardOutputDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false, maxWrite: atomicPipeWriteBytes });
}

/**
 * A worker thread's standard output (the worker of `sluice start`): synchronous, one whole
 * line per write. pino flushes an asynchronous destination only when the process exits, and
 * a thread that is terminated cannot wait for a write in flight: a flush at its stop could put
 * the last lines before it, or lose it.
 */
export function threadStandardOutputDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}

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
    options.destination ?? standardOutputDestination(),
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
