import { context, propagation, trace } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace";

export interface TracingSettings {
  /** OTLP/HTTP traces URL (`…/v1/traces`); undefined = tracing off. */
  tracesEndpoint: string | undefined;
  serviceName: string;
  /** Fraction of new traces sampled (0..1); a trace continued from a parent follows the parent's decision. */
  sampleRatio: number;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Exports what is buffered, then unregisters the provider. Safe to call twice. */
  shutdown(): Promise<void>;
}

const disabled: Tracing = { enabled: false, shutdown: () => Promise.resolve() };
const shutdownFlushTimeoutMs = 5_000;

/**
 * Registers an OpenTelemetry tracer provider when a traces endpoint is
 * configured (or an exporter is given, for tests). Off, it loads nothing: the
 * SDK, context manager and exporter are dynamic imports behind this check, so
 * only `@opentelemetry/api` (no-op by default) is ever in the module graph.
 * @example const tracing = await startTracing(settings); ... await tracing.shutdown();
 */
export async function startTracing(settings: TracingSettings, options: { exporter?: SpanExporter } = {}): Promise<Tracing> {
  if (settings.tracesEndpoint === undefined && options.exporter === undefined) return disabled;
  const [sdk, { AsyncLocalStorageContextManager }, { resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/context-async-hooks"),
    // A dependency of the SDK (same release), imported for the service.name resource.
    import("@opentelemetry/resources"),
    // The `traceparent` carried in job data (traceparent.ts).
    import("@opentelemetry/core"),
  ]);
  const exporter = options.exporter ?? new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter({ url: settings.tracesEndpoint ?? "" });
  // Tests export synchronously so spans are visible at once; production batches (default 5 s, 512 spans).
  const processor = options.exporter ? new sdk.SimpleSpanProcessor({ exporter }) : new sdk.BatchSpanProcessor({ exporter });
  const provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({ "service.name": settings.serviceName }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [processor],
  });
  // Async-local context, so a span started in a handler or job is the parent of spans in the awaits below it.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  let stopped: Promise<void> | undefined;
  // An unreachable collector must not hold up process exit: the last export gets a bounded wait
  // (a raw timer: it bounds a real network flush at shutdown, nothing a test steps through).
  const flushed = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, shutdownFlushTimeoutMs);
      void provider.shutdown().catch(() => undefined).finally(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return {
    enabled: true,
    shutdown: () =>
      (stopped ??= flushed().finally(() => {
        trace.disable();
        propagation.disable();
        context.disable();
      })),
  };
}
