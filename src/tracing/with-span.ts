import { SpanStatusCode, context, trace, type Attributes, type Context, type Span, type SpanKind } from "@opentelemetry/api";
import { messageWithCauses, redactDatabaseError, sqlStateIn } from "../logging/redact-database-error.ts";

/** The one instrumentation scope of Sluice's spans. */
export const tracerName = "sluice";

export interface SpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  /** Parent context; defaults to the active one (e.g. a context extracted from job data). */
  parent?: Context;
}

/**
 * Runs `run` inside a new active span and ends it when `run` settles; a
 * rejection is recorded on the span and rethrown. With no tracer provider
 * registered (tracing off) the API hands out a non-recording span: a few
 * allocations per call, so use it per request or job, never per chunk.
 * @example await withSpan("final save", {}, () => messages.finish(...));
 */
export async function withSpan<T>(name: string, options: SpanOptions, run: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.parent ?? context.active();
  // getTracer on every call, not once: a provider registered later (or replaced in tests) is picked up.
  const span = trace.getTracer(tracerName).startSpan(name, spanStartOptions(options), parent);
  try {
    return await context.with(trace.setSpan(parent, span), run, undefined, span);
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** A span the caller ends itself, child of the active context; for a stretch of code that is not one callback. */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  return trace.getTracer(tracerName).startSpan(name, spanStartOptions(options), options.parent ?? context.active());
}

/**
 * Marks `span` failed with `error` (the caller still ends it). A database error
 * anywhere in the cause chain is recorded by its SQLSTATE (`db.response.status_code`)
 * and a safe message, never with the statement's parameters (src/logging/redact-database-error.ts).
 */
export function failSpan(span: Span, error: unknown): void {
  const safe = redactDatabaseError(error);
  if (safe instanceof Error) {
    // The span's exception.message joins the chain's messages: a wrapper's own ("internal error") says little.
    span.recordException({ name: safe.name, message: messageWithCauses(safe), ...(safe.stack === undefined ? {} : { stack: safe.stack }) });
  } else {
    span.recordException(String(safe));
  }
  const sqlState = sqlStateIn(error);
  if (sqlState !== undefined) span.setAttribute("db.response.status_code", sqlState);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

function spanStartOptions(options: SpanOptions): { attributes?: Attributes; kind?: SpanKind } {
  return {
    ...(options.attributes ? { attributes: options.attributes } : {}),
    ...(options.kind === undefined ? {} : { kind: options.kind }),
  };
}
