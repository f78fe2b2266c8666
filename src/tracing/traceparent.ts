import { ROOT_CONTEXT, context, isSpanContextValid, trace, type Context } from "@opentelemetry/api";

// W3C Trace Context `traceparent`, version 00: version-traceId-parentId-flags.
const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The active span as a W3C `traceparent` string, to carry a trace across the
 * queue in job data (ids only, nothing secret). Undefined when no span is
 * recording, i.e. always when tracing is off.
 */
export function activeTraceparent(): string | undefined {
  const spanContext = trace.getSpan(context.active())?.spanContext();
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return undefined;
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * The context a `traceparent` names, as a remote parent for spans started in
 * another process; the root context when it is missing or malformed.
 */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  const match = traceparent === undefined ? null : traceparentPattern.exec(traceparent);
  if (!match) return ROOT_CONTEXT;
  const spanContext = { traceId: match[1] ?? "", spanId: match[2] ?? "", traceFlags: Number.parseInt(match[3] ?? "0", 16), isRemote: true };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : ROOT_CONTEXT;
}
