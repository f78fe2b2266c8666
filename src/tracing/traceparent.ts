import { ROOT_CONTEXT, context, propagation, type Context } from "@opentelemetry/api";

/**
 * The active span's W3C `traceparent`, to carry a trace across the queue in job
 * data (ids only, nothing secret). The W3C propagator is registered only while
 * tracing is on (start-tracing.ts), so this is always undefined when it is off.
 */
export function activeTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * The context a `traceparent` names, as a remote parent for spans started in
 * another process; the root context when it is missing or malformed.
 */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  return traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, { traceparent });
}
