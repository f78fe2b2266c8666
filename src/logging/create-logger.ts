import { pino, type Logger } from "pino";

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
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    options.destination,
  );
}

export type { Logger };
